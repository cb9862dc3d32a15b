"""What lrun lets a user see of their functions: logs kept as CloudWatch Logs keeps them (groups,
streams, events, filter patterns), metrics as Lambda's, and what the invocations cost.

Fed behind the invocations (the log book's writer hands it each batch), so nothing here runs
in a request's path. May import ``sandbox`` and ``manifest`` (for invocation results and
function specs) and the leaves; ``api`` and ``cli`` import it.
"""
