#!/usr/bin/env python3
"""Writes the bedrock-* vectors in this folder: real botocore signatures of Bedrock requests.

botocore's bedrock-runtime client serialises a Converse / ConverseStream call (it percent-encodes the
model id into the path) and signs it at the suite's fixed time; a before-send hook keeps the request
off the network. The files take the test suite's shape (.req .creq .sts .authz), so sigv4_test runs
them like the others: .req holds the headers botocore signed, in the order it sent them.

  python3 tests/data/sigv4/make_bedrock_vectors.py   # needs: pip install botocore
"""
import datetime
import json
import logging
import os
import re

import botocore
import botocore.auth
import botocore.session

HERE = os.path.dirname(os.path.abspath(__file__))
FIXED_TIME = datetime.datetime(2015, 8, 30, 12, 36, 0)
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
MESSAGES = [{"role": "user", "content": [{"text": "Hi"}]}]


class Captured(logging.Handler):
    def __init__(self):
        super().__init__()
        self.steps = {}

    def emit(self, record):
        if record.args and record.msg.split(":")[0] in ("CanonicalRequest", "StringToSign"):
            self.steps[record.msg.split(":")[0]] = record.args[0]


def write_vector(name, model_id, operation, token=None):
    botocore.auth.get_current_datetime = lambda remove_tzinfo=True: FIXED_TIME
    session = botocore.session.get_session()
    session.set_credentials(ACCESS_KEY, SECRET_KEY, token)
    client = session.create_client("bedrock-runtime", region_name="us-east-1")
    sent = {}

    def keep_off_the_network(request, **kwargs):
        sent["request"] = request
        raise RuntimeError("not sent")

    client.meta.events.register("before-send", keep_off_the_network)
    captured = Captured()
    logger = logging.getLogger("botocore.auth")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(captured)
    try:
        getattr(client, operation)(modelId=model_id, messages=MESSAGES)
    except RuntimeError:
        pass
    logger.removeHandler(captured)

    request = sent["request"]
    authz = request.headers["Authorization"].decode()
    signed = re.search(r"SignedHeaders=([^,]+)", authz).group(1).split(";")
    path = request.url.split("amazonaws.com", 1)[1]
    lines = [f"{request.method} {path} HTTP/1.1", "Host:bedrock-runtime.us-east-1.amazonaws.com"]
    for key, value in request.headers.items():
        if key.lower() in signed and key.lower() not in ("host", "x-amz-security-token"):
            lines.append(f"{key}:{value.decode() if isinstance(value, bytes) else value}")
    body = request.body.decode() if isinstance(request.body, bytes) else request.body
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    files = {
        "req": "\n".join(lines) + "\n\n" + body,
        "creq": captured.steps["CanonicalRequest"],
        "sts": captured.steps["StringToSign"],
        "authz": authz,
    }
    for ext, text in files.items():
        with open(os.path.join(folder, f"{name}.{ext}"), "w", encoding="utf-8", newline="") as f:
            f.write(text)
    print(name, "botocore", botocore.__version__, json.dumps(path))


write_vector("bedrock-converse", "anthropic.claude-3-5-haiku-20241022-v1:0", "converse")
write_vector(
    "bedrock-converse-stream-arn-token",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
    "converse_stream",
    token="AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeo",
)
