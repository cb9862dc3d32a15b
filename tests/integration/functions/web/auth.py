"""Lambda authorizers for tests/acceptance/test_gateway.py, answering as the developer guide's
examples do: a simple response (HTTP API, payload 2.0) and an IAM policy (REST API, TOKEN)."""


def simple(event, context):
    token = event["identitySource"][0]
    return {"isAuthorized": token == "Bearer letmein", "context": {"user": "ana", "level": 3}}


def token(event, context):
    if event["authorizationToken"] not in ("allow", "deny"):
        raise Exception("Unauthorized")  # API Gateway answers 401
    return {
        "principalId": "user-7",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow" if event["authorizationToken"] == "allow" else "Deny",
                    "Resource": event["methodArn"],
                }
            ],
        },
        "context": {"tier": "gold"},
    }
