from knack.help_files import helps

helps['webapp auth'] = """
type: group
short-summary: Manage App Service authentication ("Easy Auth") with the v2 settings (config/authsettingsV2).
"""

helps['webapp auth show'] = """
type: command
short-summary: Show the authentication settings of a web app (the authsettingsV2 resource).
examples:
  - name: Show the settings.
    text: az webapp auth show -g MyResourceGroup -n MyWebApp
  - name: Save them to edit and apply with `az webapp auth set`.
    text: az webapp auth show -g MyResourceGroup -n MyWebApp > auth.json
"""

helps['webapp auth set'] = """
type: command
short-summary: Replace the authentication settings of a web app with a JSON document.
long-summary: >
  The document is the authsettingsV2 resource as `az webapp auth show` prints it, or only its
  "properties". Settings not in the document are reset to their defaults.
examples:
  - name: Apply settings from a file.
    text: az webapp auth set -g MyResourceGroup -n MyWebApp --body @auth.json
"""

helps['webapp auth update'] = """
type: command
short-summary: Change some authentication settings of a web app and keep the others.
examples:
  - name: Turn authentication on and send unauthenticated browsers to the sign-in page.
    text: az webapp auth update -g MyResourceGroup -n MyWebApp --enabled true --action RedirectToLoginPage
  - name: Let health probes through without signing in.
    text: az webapp auth update -g MyResourceGroup -n MyWebApp --excluded-paths "/health,/ready"
  - name: Set one field by its path.
    text: >
      az webapp auth update -g MyResourceGroup -n MyWebApp
      --set identityProviders.azureActiveDirectory.registration.clientId=00000000-0000-0000-0000-000000000000
"""

helps['webapp auth microsoft'] = """
type: group
short-summary: Manage the Microsoft Entra ID (azureActiveDirectory) identity provider of a web app.
"""

helps['webapp auth microsoft show'] = """
type: command
short-summary: Show the settings of the Microsoft Entra ID identity provider.
examples:
  - name: Print the client id.
    text: az webapp auth microsoft show -g MyResourceGroup -n MyWebApp --query registration.clientId -o tsv
"""

helps['webapp auth microsoft update'] = """
type: command
short-summary: Update the client id, secret, issuer and token audiences of the Microsoft Entra ID identity provider.
long-summary: The provider is enabled. A client secret goes to an app setting; the settings keep only its name.
examples:
  - name: Configure sign-in with an app registration and its secret.
    text: >
      az webapp auth microsoft update -g MyResourceGroup -n MyWebApp --client-id 00000000-0000-0000-0000-000000000000
      --client-secret MySecret --issuer https://login.microsoftonline.com/<tenant-id>/v2.0 --yes
  - name: Accept access tokens issued for the app's API.
    text: >
      az webapp auth microsoft update -g MyResourceGroup -n MyWebApp
      --allowed-token-audiences api://00000000-0000-0000-0000-000000000000
"""
