def handler(event, context):
    """A batch of the Jobs queue's messages; a message whose body is "fail" is reported as
    failed alone, and comes back until it goes to JobsDeadLetters."""
    failures = []
    for record in event["Records"]:
        if record["body"] == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
        else:
            print(f"job done: {record['body']}")
    return {"batchItemFailures": failures}
