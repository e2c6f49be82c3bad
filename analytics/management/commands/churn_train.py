"""manage.py churn_train --as-of YYYY-MM-DD: train the churn model on data up to a day."""

from __future__ import annotations

import datetime
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from analytics.churn.services import ChurnError, churn_train


def as_of_parse(value: str | None) -> datetime.date:
    if not value:
        raise CommandError("--as-of YYYY-MM-DD is required")
    try:
        day = datetime.date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"--as-of must be YYYY-MM-DD, not {value!r}") from error
    today = timezone.localdate()
    if day > today:
        raise CommandError(f"--as-of {day.isoformat()} is in the future (today is {today})")
    return day


class Command(BaseCommand):
    help = (
        "Train the churn model on data on or before a business day (Asia/Shanghai) and print "
        "its model card as one JSON line. Training the same day again replaces its model."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--as-of", dest="as_of", help="business day YYYY-MM-DD")

    def handle(self, *args, **options) -> None:
        as_of = as_of_parse(options["as_of"])
        try:
            model = churn_train(as_of=as_of)
        except ChurnError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(json.dumps(model.card, ensure_ascii=False, sort_keys=True))
