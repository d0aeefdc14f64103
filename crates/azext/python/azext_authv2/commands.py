from azure.cli.core.commands import CliCommandType


def load_command_table(loader, _):
    custom = CliCommandType(operations_tmpl='azext_authv2.custom#{}')

    with loader.command_group('webapp auth', custom_command_type=custom) as g:
        g.custom_show_command('show', 'show_auth_settings')
        g.custom_command('set', 'set_auth_settings')
        g.custom_command('update', 'update_auth_settings')

    with loader.command_group('webapp auth microsoft', custom_command_type=custom) as g:
        g.custom_show_command('show', 'show_microsoft_settings')
        g.custom_command('update', 'update_microsoft_settings')
