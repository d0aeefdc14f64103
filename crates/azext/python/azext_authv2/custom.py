"""The commands: read and write the app's authsettingsV2 resource through ARM.

Every write is a whole-resource PUT (ARM has no PATCH for it), so `update` reads the resource,
changes the fields asked for and puts it back.
"""

import json
import os
from urllib.parse import quote

from knack.log import get_logger
from knack.prompting import NoTTYException, prompt_y_n
from knack.util import CLIError

from azure.cli.core import azclierror
from azure.cli.core.commands.client_factory import get_subscription_id
from azure.cli.core.util import send_raw_request

logger = get_logger(__name__)

API_VERSION = '2020-12-01'
MICROSOFT_SECRET_SETTING = 'MICROSOFT_PROVIDER_AUTHENTICATION_SECRET'
CERTIFICATE_FIELDS = ('clientSecretCertificateThumbprint', 'clientSecretCertificateSubjectAlternativeName',
                      'clientSecretCertificateIssuer')


# ---------------------------------------------------------------------------------------------
# Commands

def show_auth_settings(cmd, resource_group_name, name, slot=None):
    return _get_auth_settings(cmd, resource_group_name, name, slot)


def set_auth_settings(cmd, resource_group_name, name, body=None, slot=None):
    if body is None:
        raise azclierror.RequiredArgumentMissingError(
            'Usage Error: --body is required: the settings as JSON, or @FILE.')
    document = _parse_body(body)
    properties = document.get('properties', document)
    if not isinstance(properties, dict):
        raise azclierror.InvalidArgumentValueError('--body: "properties" must be a JSON object.')
    _refuse_v1(cmd, resource_group_name, name, slot, 'set')
    return _put_auth_settings(cmd, resource_group_name, name, slot, properties)


def update_auth_settings(cmd, resource_group_name, name, set_string=None, enabled=None,
                         runtime_version=None, config_file_path=None, unauthenticated_client_action=None,
                         redirect_provider=None, enable_token_store=None, require_https=None,
                         proxy_convention=None, proxy_custom_host_header=None, proxy_custom_proto_header=None,
                         excluded_paths=None, slot=None):
    # Arguments are checked before any request is made.
    assignments = [_parse_assignment(assignment) for assignment in set_string or []]
    if excluded_paths is not None:
        excluded_paths = _parse_list(excluded_paths, '--excluded-paths')

    _refuse_v1(cmd, resource_group_name, name, slot, 'update')
    properties = _get_auth_settings(cmd, resource_group_name, name, slot).get('properties') or {}

    # --set first, so that the named flags win when both touch one field.
    for keys, value in assignments:
        try:
            _section(properties, *keys[:-1])[keys[-1]] = value
        except ValueError:
            raise azclierror.InvalidArgumentValueError(
                '--set: {} is not an object in the current settings.'.format('.'.join(keys[:-1]))) from None

    if enabled is not None:
        _section(properties, 'platform')['enabled'] = enabled
    if runtime_version is not None:
        _section(properties, 'platform')['runtimeVersion'] = runtime_version
    if config_file_path is not None:
        _section(properties, 'platform')['configFilePath'] = config_file_path
    if unauthenticated_client_action is not None:
        validation = _section(properties, 'globalValidation')
        validation['unauthenticatedClientAction'] = unauthenticated_client_action
        # Choosing what happens to unauthenticated requests is choosing whether they are
        # allowed: only AllowAnonymous lets them through.
        validation['requireAuthentication'] = unauthenticated_client_action != 'AllowAnonymous'
    if redirect_provider is not None:
        _section(properties, 'globalValidation')['redirectToProvider'] = redirect_provider
    if excluded_paths is not None:
        _section(properties, 'globalValidation')['excludedPaths'] = excluded_paths
    if enable_token_store is not None:
        _section(properties, 'login', 'tokenStore')['enabled'] = enable_token_store
    if require_https is not None:
        _section(properties, 'httpSettings')['requireHttps'] = require_https
    if proxy_convention is not None:
        _section(properties, 'httpSettings', 'forwardProxy')['convention'] = proxy_convention
    if proxy_custom_host_header is not None:
        _section(properties, 'httpSettings', 'forwardProxy')['customHostHeaderName'] = proxy_custom_host_header
    if proxy_custom_proto_header is not None:
        _section(properties, 'httpSettings', 'forwardProxy')['customProtoHeaderName'] = proxy_custom_proto_header

    return _put_auth_settings(cmd, resource_group_name, name, slot, properties)


def show_microsoft_settings(cmd, resource_group_name, name, slot=None):
    properties = _get_auth_settings(cmd, resource_group_name, name, slot).get('properties') or {}
    return (properties.get('identityProviders') or {}).get('azureActiveDirectory') or {}


def update_microsoft_settings(cmd, resource_group_name, name, slot=None,
                              client_id=None, client_secret=None, client_secret_setting_name=None,
                              client_secret_certificate_thumbprint=None, client_secret_certificate_san=None,
                              client_secret_certificate_issuer=None, issuer=None, tenant_id=None,
                              allowed_token_audiences=None, yes=False):
    uses_secret = client_secret is not None or client_secret_setting_name is not None
    uses_thumbprint = client_secret_certificate_thumbprint is not None
    uses_san = client_secret_certificate_san is not None or client_secret_certificate_issuer is not None
    if sum([uses_secret, uses_thumbprint, uses_san]) > 1:
        raise azclierror.MutuallyExclusiveArgumentError(
            'Usage Error: the app proves itself with one credential: a client secret '
            '(--client-secret/--client-secret-setting-name), a certificate thumbprint '
            '(--client-secret-certificate-thumbprint), or a certificate subject and issuer '
            '(--client-secret-certificate-san with --client-secret-certificate-issuer).')
    if issuer is not None and tenant_id is not None:
        raise azclierror.MutuallyExclusiveArgumentError(
            'Usage Error: give --issuer or --tenant-id, not both (--tenant-id only derives the issuer).')

    if allowed_token_audiences is not None:
        allowed_token_audiences = _parse_list(allowed_token_audiences, '--allowed-token-audiences')

    if client_secret is not None and not yes:
        _confirm('Configuring --client-secret writes it to the app setting {} of the web app. Continue?'
                 .format(client_secret_setting_name or MICROSOFT_SECRET_SETTING))

    _refuse_v1(cmd, resource_group_name, name, slot, 'microsoft update')
    properties = _get_auth_settings(cmd, resource_group_name, name, slot).get('properties') or {}
    provider = _section(properties, 'identityProviders', 'azureActiveDirectory')
    registration = _section(provider, 'registration')

    if client_id is not None:
        registration['clientId'] = client_id
    if client_secret is not None:
        setting = client_secret_setting_name or MICROSOFT_SECRET_SETTING
        # The secret goes to the app settings first, so that the module never runs with a
        # setting name that does not resolve yet.
        _set_app_setting(cmd, resource_group_name, name, slot, setting, client_secret)
        registration['clientSecretSettingName'] = setting
    elif client_secret_setting_name is not None:
        registration['clientSecretSettingName'] = client_secret_setting_name
    if uses_secret:
        for field in CERTIFICATE_FIELDS:
            registration.pop(field, None)
    if uses_thumbprint:
        registration['clientSecretCertificateThumbprint'] = client_secret_certificate_thumbprint
        for field in ('clientSecretSettingName',) + CERTIFICATE_FIELDS[1:]:
            registration.pop(field, None)
    if uses_san:
        if client_secret_certificate_san is not None:
            registration['clientSecretCertificateSubjectAlternativeName'] = client_secret_certificate_san
        if client_secret_certificate_issuer is not None:
            registration['clientSecretCertificateIssuer'] = client_secret_certificate_issuer
        for field in ('clientSecretSettingName', 'clientSecretCertificateThumbprint'):
            registration.pop(field, None)
    if issuer is not None:
        registration['openIdIssuer'] = issuer
    elif tenant_id is not None:
        # The cloud's own Entra endpoint rather than a fixed host: in a sovereign cloud, or under
        # `easyauth up` (whose cloud points at the local identity provider), it is the right one.
        authority = cmd.cli_ctx.cloud.endpoints.active_directory.rstrip('/')
        registration['openIdIssuer'] = '{}/{}/v2.0'.format(authority, tenant_id)
    if allowed_token_audiences is not None:
        _section(provider, 'validation')['allowedAudiences'] = allowed_token_audiences
    provider['enabled'] = True

    result = _put_auth_settings(cmd, resource_group_name, name, slot, properties)
    return ((result.get('properties') or {}).get('identityProviders') or {}).get('azureActiveDirectory') or {}


# ---------------------------------------------------------------------------------------------
# ARM

def _site_url(cmd, resource_group_name, name, slot, path):
    endpoint = cmd.cli_ctx.cloud.endpoints.resource_manager.rstrip('/')
    site = '/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{}'.format(
        quote(get_subscription_id(cmd.cli_ctx), safe=''), quote(resource_group_name, safe=''), quote(name, safe=''))
    if slot:
        site += '/slots/{}'.format(quote(slot, safe=''))
    return '{}{}/{}?api-version={}'.format(endpoint, site, path, API_VERSION)


def _arm(cmd, method, url, body=None):
    """One ARM request; the parsed JSON answer, or None when it has no body."""
    try:
        response = send_raw_request(cmd.cli_ctx, method, url,
                                    body=json.dumps(body) if body is not None else None)
    except CLIError as err:
        # send_raw_request's error for a status >= 400 carries the response.
        if getattr(err, 'response', None) is None:
            raise
        raise _arm_error(err) from None
    if not response.text:
        return None
    try:
        return response.json()
    except ValueError:
        raise azclierror.AzureResponseError(
            '{} {} answered with a body that is not JSON.'.format(method, url.split('?')[0])) from None


def _arm_error(err):
    """az's error type for the status, carrying ARM's own message."""
    response = err.response
    status = response.status_code
    # A 401 with a challenge is for az itself to handle (it asks the user to sign in again).
    if status == 401 and 'WWW-Authenticate' in response.headers:
        return err
    code, message = None, None
    try:
        payload = response.json()
        # ARM's {"error": {"code", "message"}}; App Service also answers {"Code", "Message"}.
        error = payload.get('error', payload) if isinstance(payload, dict) else {}
        code = error.get('code') or error.get('Code')
        message = error.get('message') or error.get('Message')
    except ValueError:
        pass
    if not message:
        message = '{} {}'.format(status, response.reason) + (': ' + response.text if response.text else '')
    text = '({}) {}'.format(code, message) if code else message
    if status == 400:
        return azclierror.BadRequestError(text)
    if status == 401:
        return azclierror.UnauthorizedError(text)
    if status == 403:
        return azclierror.ForbiddenError(text)
    if status == 404:
        return azclierror.ResourceNotFoundError(text)
    if 400 <= status < 500:
        return azclierror.UnclassifiedUserFault(text)
    if status >= 500:
        return azclierror.AzureInternalError(text)
    return azclierror.AzureResponseError(text)


def _get_auth_settings(cmd, resource_group_name, name, slot):
    url = _site_url(cmd, resource_group_name, name, slot, 'config/authsettingsV2/list')
    return _arm(cmd, 'GET', url) or {}


def _put_auth_settings(cmd, resource_group_name, name, slot, properties):
    url = _site_url(cmd, resource_group_name, name, slot, 'config/authsettingsV2')
    return _arm(cmd, 'PUT', url, {'properties': properties}) or {}


def _refuse_v1(cmd, resource_group_name, name, slot, command):
    """The v2 commands must not silently take over an app configured through the v1 settings."""
    url = _site_url(cmd, resource_group_name, name, slot, 'config/authsettings/list')
    properties = (_arm(cmd, 'POST', url) or {}).get('properties') or {}
    version = str(properties.get('configVersion') or 'v1').lower()
    if version == 'v1' and str(properties.get('enabled')).lower() == 'true':
        raise azclierror.ArgumentUsageError(
            "Usage Error: 'az webapp auth {}' manages the v2 auth settings, but this app's authentication is "
            "configured and enabled through the v1 (classic) settings (configVersion v1). Upgrade its auth "
            "settings to configuration version v2 first.".format(command))


def _set_app_setting(cmd, resource_group_name, name, slot, key, value):
    current = _arm(cmd, 'POST', _site_url(cmd, resource_group_name, name, slot, 'config/appsettings/list')) or {}
    settings = dict(current.get('properties') or {})
    settings[key] = value
    _arm(cmd, 'PUT', _site_url(cmd, resource_group_name, name, slot, 'config/appsettings'), {'properties': settings})


# ---------------------------------------------------------------------------------------------
# Arguments

def _parse_body(body):
    text = body
    if body.startswith('@'):
        # az replaces @FILE by the file's content before we run; still '@...' means it could not.
        raise azclierror.FileOperationError('--body: cannot read the file {}.'.format(body[1:]))
    try:
        document = json.loads(text)
    except ValueError as err:
        if not os.path.isfile(body):
            raise azclierror.InvalidArgumentValueError(
                '--body is not valid JSON ({}). To read a file, write --body @FILE.'.format(err)) from None
        with open(body, encoding='utf-8-sig') as f:
            try:
                document = json.load(f)
            except ValueError as file_err:
                raise azclierror.InvalidArgumentValueError(
                    '--body: {} is not valid JSON ({}).'.format(body, file_err)) from None
    if not isinstance(document, dict):
        raise azclierror.InvalidArgumentValueError('--body must be a JSON object.')
    return document


def _parse_list(value, option):
    """A JSON array, or a comma-separated list (brackets and quotes around items tolerated)."""
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, list):
        if not all(isinstance(item, str) for item in parsed):
            raise azclierror.InvalidArgumentValueError('{}: every item must be a string.'.format(option))
        return parsed
    text = value.strip()
    if text.startswith('[') and text.endswith(']'):
        text = text[1:-1]
    items = (item.strip().strip('"\'').strip() for item in text.split(','))
    return [item for item in items if item]


def _parse_assignment(assignment):
    """--set's PATH=VALUE as (keys, value); a leading "properties." is optional."""
    path, sep, raw = assignment.partition('=')
    keys = [key for key in path.strip().split('.') if key]
    if keys[:1] == ['properties']:
        keys = keys[1:]
    if not sep or not keys:
        raise azclierror.InvalidArgumentValueError(
            '--set: expected PATH=VALUE, e.g. globalValidation.unauthenticatedClientAction=Return401; '
            'got {!r}.'.format(assignment))
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return keys, value


def _section(document, *keys):
    """The object at keys, created when missing (ValueError when a value in the way is not one)."""
    for key in keys:
        child = document.get(key)
        if child is None:
            child = document[key] = {}
        elif not isinstance(child, dict):
            raise ValueError(key)
        document = child
    return document


def _confirm(message):
    try:
        confirmed = prompt_y_n(message, default='n')
    except NoTTYException:
        raise azclierror.ArgumentUsageError(
            'Usage Error: {} There is no terminal to ask on; add --yes to confirm.'.format(message)) from None
    if not confirmed:
        raise azclierror.ManualInterrupt('Cancelled: nothing was changed.')
