def handler(event, context):
    """An EventBridge scheduled event, every minute."""
    print(f"tick at {event['time']}")
