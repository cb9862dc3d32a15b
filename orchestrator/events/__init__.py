"""What happens later: durable state, asynchronous invocation, and the sources that start functions.

Owns: the SQLite store (``store``, DESIGN D6), the queue and dispatcher of ``Event`` invocations
(``event_queue``), functions' asynchronous settings as set through the API (``invoke_config``),
local queues (``queues``, the SQS role), local buckets (``buckets``, the S3 role) and the event
sources that poll them and fire schedules (``sources``).
May import: ``service`` and ``pool`` (to invoke), ``sandbox.invocation`` values, ``manifest``
and the leaves; never ``api`` or ``cli``.
"""
