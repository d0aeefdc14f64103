# easyauth's own "authV2" extension for the Azure CLI: `az webapp auth` on the v2 settings
# resource (config/authsettingsV2). Written for easyauth (MIT); it talks plain ARM, so it works
# against App Service and against `easyauth up`'s local ARM alike.

from azure.cli.core import AzCommandsLoader

from azext_authv2._help import helps  # noqa: F401  (registers the help texts)


class AuthV2CommandsLoader(AzCommandsLoader):

    def __init__(self, cli_ctx=None):
        from azure.cli.core.commands import CliCommandType
        custom = CliCommandType(operations_tmpl='azext_authv2.custom#{}')
        super().__init__(cli_ctx=cli_ctx, custom_command_type=custom)

    def load_command_table(self, args):
        from azext_authv2.commands import load_command_table
        load_command_table(self, args)
        return self.command_table

    def load_arguments(self, command):
        from azext_authv2._params import load_arguments
        load_arguments(self, command)


COMMAND_LOADER_CLS = AuthV2CommandsLoader
