"""`manage.py create_api_token --store CODE [--name NAME]`: a bearer token for a POS system.

The raw token is the last line of the output, alone, so scripts can take it with `tail -n1`.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from members.selectors import store_get
from members.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a store's POS system and print it (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--store", required=True, help="Store code, e.g. SH001.")
        parser.add_argument("--name", default="", help="What the token is for, e.g. 'till 3'.")

    def handle(self, *args, store: str, name: str, **options) -> None:
        found = store_get(code=store.strip())
        if found is None:
            raise CommandError(
                _("There is no active store with the code %(code)s; nothing was created.")
                % {"code": store}
            )
        token, raw = api_token_create(store=found, name=name or f"POS {found.code}")
        self.stdout.write(
            _("Created API token %(prefix)s… “%(name)s” for store %(store)s.")
            % {"prefix": token.prefix, "name": token.name, "store": found.code}
        )
        self.stdout.write(
            _("Send it as “Authorization: Bearer <token>”. It is shown only now; keep it safe.")
        )
        self.stdout.write(raw)
