"""gunicorn's settings: `gunicorn --config gunicorn.conf.py loyalty_site.wsgi`.

Each value comes from an environment variable when set (README "Configuration"); flags on
the command line and in GUNICORN_CMD_ARGS still win over this file, as gunicorn documents.
The defaults are starting points for a small host, to be tuned by measuring.
"""

from __future__ import annotations

import os

import environ

env = environ.Env()

# The cores this process may run on: sched_getaffinity follows taskset and cpusets (docker
# --cpuset-cpus). A CPU quota (docker --cpus) is not visible here: set WEB_CONCURRENCY then.
cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1

# The address to listen on. PORT is the platform convention gunicorn itself honours.
bind = env.str("GUNICORN_BIND", default=f"0.0.0.0:{env.int('PORT', default=8000)}")

# Processes: each takes one core's worth of Python (the GIL) while it works, and a request
# spends part of its time waiting on PostgreSQL, so one process more than cores keeps the
# cores busy. More only add switching: on 2 cores (bench api --server, 1M members) 3
# processes × 2 threads served 1,422 lookups/s and 384 purchases/s, gunicorn's rule of thumb
# of 2 × cores + 1 (5 × 2) 940/s and 305/s. Each costs memory (below) and its threads each
# hold a database connection (CONN_MAX_AGE): processes × threads connections per server.
# WEB_CONCURRENCY is gunicorn's own name for it (and Heroku's).
workers = env.int("WEB_CONCURRENCY", default=cores + 1)

# The application is imported once, before the workers are forked, and they share that
# memory: pandas and scikit-learn come in at start, about 200 MB a process (measured on 2
# cores: 5 workers, 867 MB in all without, 403 MB with). A replacement worker then starts at
# once rather than importing for 2 s, and a settings error stops the server before it
# listens. Safe because nothing connects at import: Django connects on the first query, in
# the worker. Code changes need a restart, not a HUP (a deployment restarts anyway).
preload_app = env.bool("GUNICORN_PRELOAD", default=True)

# Threads per process: a second thread serves a request while the first waits on the
# database, at the cost of one more connection. Above 1, the threaded worker (gthread) also
# keeps idle keep-alive connections without holding a thread; at 1, the sync worker.
threads = env.int("GUNICORN_THREADS", default=2)
worker_class = "gthread" if threads > 1 else "sync"

# Seconds an idle client connection stays open for its next request: enough for a browser's
# page and its static files, or a till's next call, to reuse it. Behind a load balancer that
# keeps connections to the server, set it above the balancer's idle timeout, so the server
# never closes a connection the balancer is about to reuse (a spurious 502).
keepalive = env.int("GUNICORN_KEEPALIVE", default=5)

# Seconds without a heartbeat before the arbiter kills and replaces a worker. A sync worker
# beats between requests, so this also caps a request; a gthread worker beats while its
# threads work, so it only catches a worker stuck as a whole (long CSV exports stream fine).
timeout = env.int("GUNICORN_TIMEOUT", default=30)
# Seconds the requests in flight get to finish on a restart or stop (SIGTERM) before their
# worker is killed: a till's purchase should complete, not be cut off. docker-compose.yml
# gives the web service longer than this before it kills the container.
graceful_timeout = env.int("GUNICORN_GRACEFUL_TIMEOUT", default=30)

# A worker is replaced after this many requests, plus up to the jitter so they do not all
# restart at once: whatever memory it has grown (caches, fragmentation, pages it stopped
# sharing with the arbiter) is given back. Cheap with preload_app: a fork, not an import.
max_requests = env.int("GUNICORN_MAX_REQUESTS", default=10_000)
max_requests_jitter = env.int("GUNICORN_MAX_REQUESTS_JITTER", default=1_000)

# The workers' heartbeat files: on a disk-backed /tmp (a container's overlay file system)
# updating them can stall a worker; /dev/shm is memory. gunicorn makes them with mkstemp and
# unlinks them at once, so a directory every user can write to is safe here (ruff's S108).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

# One line per request on stdout ("-"); a file path, or an empty value for none. The path
# is logged without its query string: API lookups carry phone numbers there (?phone=…).
# REMOTE_ADDR is the proxy's address behind one, so the client's X-Forwarded-For is logged
# too. %(D)s is the time the request took, in microseconds; %(b)s the bytes of the body it
# wrote (0 for a static file: gunicorn hands those to sendfile and does not count them).
accesslog = env.str("GUNICORN_ACCESS_LOG", default="-") or None
access_log_format = '%(h)s "%({x-forwarded-for}i)s" %(t)s "%(m)s %(U)s" %(s)s %(b)s %(D)sus "%(a)s"'
# gunicorn's own messages (start, worker restarts, timeouts) on stderr, beside Django's log.
errorlog = "-"

# gunicorn's control socket (for `gunicornc`) is off unless a path is given: by default it
# goes to ~/.gunicorn/, which the container's user cannot create, and every server started
# by one user would share (and take over) that one path.
control_socket = env.str("GUNICORN_CONTROL_SOCKET", default="") or None
control_socket_disable = control_socket is None
