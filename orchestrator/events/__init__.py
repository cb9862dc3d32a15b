"""What happens later: durable state, asynchronous invocation, and the sources that start functions.

Owns: the SQLite store (``store``, DESIGN D6), the queue and dispatcher of ``Event`` invocations
(``event_queue``), functions' asynchronous settings as set through the API (``invoke_config``)
and the file destinations they write (``destination_files``), what the API keeps about a
function beside it (``function_meta``: tags, policy, recursion), local queues (``queues``, the SQS
role), local buckets (``buckets``, the S3 role), event source mappings (``mappings``) and the
sources that poll queues and buckets and fire schedules (``sources``).
May import: ``service`` and ``pool`` (to invoke), ``sandbox.invocation`` values, ``manifest``
and the leaves; never ``api`` or ``cli``.
"""
