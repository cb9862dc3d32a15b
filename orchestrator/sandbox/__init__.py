"""One execution environment: a container running a language runtime, and one invocation in it.

Owns: the engine interface (``backend``) and its only implementation today (``docker_backend``,
the one module that imports ``docker``), what a container is made of (``container``: limits
mapped from memory, Lambda's variables), runtime images built offline (``images``), the Runtime
API served to containers (``runtime_api``), a live environment (``environment``), an invocation
as values (``invocation``), the invoker that starts, delivers and reports (``invoker``),
one-shot invocations without a server (``oneshot``); a runtime's output: the pipe lrun reads it
from (``pipe``) and what an invocation keeps of it (``output``); ``/tmp`` on disk (``scratch``);
who owns a container and whether that owner is gone (``ownership``); and the host firewall that
keeps functions from the host's services (``host_firewall``).
May import: the leaves (``errors``, ``aws``, ``state``, ``http_server``, ``trace``) and
``manifest``; never ``api``, ``events``, ``cli`` or the pool and service.
"""
