import json


def handler(event, context):
    # print() output goes to the function's log, like CloudWatch Logs on AWS.
    print("hello invoked with", json.dumps(event))
    return {"message": f"Hello, {event.get('name', 'world')}!"}
