"""`core.jobs.on_connections`: work items shared by threads with a connection each."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from core.jobs import on_connections


def backend_pid(_item: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_items_run_on_connections_of_their_own_and_report_in_the_calling_thread():
    caller = threading.get_ident()
    seen: list[tuple[int, int]] = []

    on_connections(
        items=list(range(20)),
        work=backend_pid,
        workers=2,
        done=lambda pid: seen.append((threading.get_ident(), pid)),
    )

    assert len(seen) == 20
    assert {thread for thread, _pid in seen} == {caller}
    assert backend_pid(0) not in {pid for _thread, pid in seen}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_first_error_stops_the_hand_out_and_is_raised():
    ran: list[int] = []
    lock = threading.Lock()

    def work(item: int) -> None:
        with lock:
            ran.append(item)
        if item == 3:
            raise ValueError("item 3")

    with pytest.raises(ValueError, match="item 3"):
        on_connections(items=list(range(1000)), work=work, workers=2)
    assert 3 in ran
    assert len(ran) < 1000


@pytest.mark.django_db
def test_inside_a_transaction_everything_runs_on_the_callers_connection():
    with transaction.atomic():
        here = connection.connection
        used = []
        on_connections(
            items=[1, 2, 3], work=lambda _item: used.append(connection.connection), workers=2
        )
    assert used == [here, here, here]
