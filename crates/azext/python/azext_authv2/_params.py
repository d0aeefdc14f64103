from knack.arguments import CLIArgumentType

from azure.cli.core.commands.parameters import get_enum_type, get_three_state_flag

UNAUTHENTICATED_CLIENT_ACTIONS = ['AllowAnonymous', 'RedirectToLoginPage', 'Return401', 'Return403', 'Return404']
FORWARD_PROXY_CONVENTIONS = ['NoProxy', 'Standard', 'Custom']


def load_arguments(loader, _):
    # id_part lets `--ids /subscriptions/.../sites/NAME[/slots/SLOT]` stand in for -g/-n/--slot.
    webapp_name = CLIArgumentType(
        options_list=['--name', '-n'], metavar='NAME', id_part='name', configured_default='web',
        help='Name of the web app. You can configure the default using `az configure --defaults web=<name>`.')

    with loader.argument_context('webapp auth') as c:
        c.argument('name', webapp_name)
        c.argument('slot', options_list=['--slot', '-s'], id_part='child_name_1',
                   help='The name of the slot. Defaults to the production slot.')

    with loader.argument_context('webapp auth set') as c:
        c.argument('body', help='The authsettingsV2 resource as JSON, as `az webapp auth show` prints it '
                                '(or only its "properties"). Use @FILE to read it from a file.')

    with loader.argument_context('webapp auth update') as c:
        c.argument('set_string', options_list=['--set'], nargs='+',
                   help='Set fields of the settings by path, e.g. '
                        '`--set identityProviders.azureActiveDirectory.registration.clientId=<id>`. '
                        'Values that parse as JSON (true, 5, ["a"]) are stored as such, others as strings.')
        c.argument('enabled', arg_type=get_three_state_flag(),
                   help='Whether authentication is enabled for the app (platform.enabled).')
        c.argument('runtime_version',
                   help='The runtime version of the authentication module (platform.runtimeVersion).')
        c.argument('config_file_path',
                   help='The path of a file holding the auth settings, relative to the site root '
                        '(platform.configFilePath).')
        c.argument('unauthenticated_client_action', options_list=['--action', '--unauthenticated-client-action'],
                   arg_type=get_enum_type(UNAUTHENTICATED_CLIENT_ACTIONS),
                   help='What to do with a request that is not authenticated.')
        c.argument('redirect_provider',
                   help='The provider to send unauthenticated browsers to when several are configured, '
                        'e.g. azureactivedirectory.')
        c.argument('enable_token_store', arg_type=get_three_state_flag(),
                   help='Whether the token store keeps the tokens of signed-in users (login.tokenStore.enabled).')
        c.argument('require_https', arg_type=get_three_state_flag(),
                   help='Whether requests over http are refused (httpSettings.requireHttps).')
        c.argument('proxy_convention', arg_type=get_enum_type(FORWARD_PROXY_CONVENTIONS),
                   help='Which forwarding headers the module trusts to build the request URL.')
        c.argument('proxy_custom_host_header', options_list=['--proxy-custom-host-header', '--custom-host-header'],
                   help='The header carrying the original host, with --proxy-convention Custom.')
        c.argument('proxy_custom_proto_header', options_list=['--proxy-custom-proto-header', '--custom-proto-header'],
                   help='The header carrying the original scheme, with --proxy-convention Custom.')
        c.argument('excluded_paths',
                   help='Paths that skip authentication: a JSON array or a comma-separated list, '
                        'e.g. "/health,/public".')

    with loader.argument_context('webapp auth microsoft update') as c:
        c.argument('client_id', arg_group='Registration',
                   help='The application (client) id of the app registration.')
        c.argument('client_secret', arg_group='Registration',
                   help='The client secret. It is stored in an app setting (MICROSOFT_PROVIDER_AUTHENTICATION_SECRET '
                        'unless --client-secret-setting-name names another), never in the auth settings.')
        c.argument('client_secret_setting_name', options_list=['--client-secret-setting-name', '--secret-setting'],
                   arg_group='Registration', help='The name of the app setting that holds the client secret.')
        c.argument('client_secret_certificate_thumbprint',
                   options_list=['--client-secret-certificate-thumbprint', '--thumbprint'], arg_group='Registration',
                   help='Instead of a secret: the thumbprint of the certificate the app signs its client '
                        'assertions with.')
        c.argument('client_secret_certificate_san', options_list=['--client-secret-certificate-san', '--san'],
                   arg_group='Registration',
                   help='Instead of a secret: the subject alternative name of the signing certificate '
                        '(with --certificate-issuer).')
        c.argument('client_secret_certificate_issuer',
                   options_list=['--client-secret-certificate-issuer', '--certificate-issuer'],
                   arg_group='Registration',
                   help='Instead of a secret: the issuer of the signing certificate (with --san).')
        c.argument('issuer', arg_group='Registration',
                   help='The OpenID Connect issuer, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0.')
        c.argument('tenant_id', arg_group='Registration',
                   help='The tenant of the app registration: without --issuer, the issuer becomes '
                        '<the cloud\'s Microsoft Entra endpoint>/<tenant-id>/v2.0.')
        c.argument('allowed_token_audiences', options_list=['--allowed-token-audiences', '--allowed-audiences'],
                   arg_group='Validation',
                   help='The audiences accepted in tokens: a comma-separated list or a JSON array, '
                        'e.g. api://<client-id>.')
        c.argument('yes', options_list=['--yes', '-y'], action='store_true',
                   help='Do not ask before writing --client-secret to the app settings.')
