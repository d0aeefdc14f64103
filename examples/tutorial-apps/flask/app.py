"""A small Flask app as one deploys it to App Service: the platform (gunicorn on Linux) finds
`app` in app.py, and Easy Auth injects the caller's identity."""

import base64
import json
import os

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.get("/")
def whoami():
    principal = request.headers.get("X-MS-CLIENT-PRINCIPAL")
    claims = {}
    if principal:
        try:
            decoded = json.loads(base64.b64decode(principal))
            claims = {c["typ"]: c["val"] for c in decoded.get("claims", [])}
        except (ValueError, KeyError):
            claims = {"undecodable": True}
    return jsonify({
        "app": os.environ.get("WEBSITE_SITE_NAME"),
        "principal_name": request.headers.get("X-MS-CLIENT-PRINCIPAL-NAME"),
        "principal_id": request.headers.get("X-MS-CLIENT-PRINCIPAL-ID"),
        "principal_idp": request.headers.get("X-MS-CLIENT-PRINCIPAL-IDP"),
        "claims": claims,
        "server": os.environ.get("SERVER_SOFTWARE", ""),
    })
