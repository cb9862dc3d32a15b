package com.amazonaws.services.lambda.runtime;

/** The Amazon Cognito identity of an invocation made through the AWS Mobile SDK. */
public interface CognitoIdentity {
    String getIdentityId();

    String getIdentityPoolId();
}
