"""Settings modules: `base` (shared, read from the environment), `production` (base with
guards; what gunicorn, the ASGI server and Celery load), `dev` (manage.py, `make run`) and
`test` (pytest)."""

# The keys dev.py and test.py fill in when SECRET_KEY is unset. Anyone who reads this
# repository can sign sessions and password-reset links with them: production refuses both.
DEV_SECRET_KEY = "dev-only-not-secret-" + "x" * 40
TEST_SECRET_KEY = "test-only-not-secret-" + "x" * 40
