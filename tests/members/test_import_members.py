"""CSV import of members: a worked example with every kind of bad row, re-runs, the command.

The example file has 15 members: three good, one imported before, eleven bad for one reason
or more each. Every test reads what an administrator would: line numbers and reasons.
"""

from __future__ import annotations

import datetime
import json
import random
import zoneinfo
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone, translation

from core.imports import (
    ImportFileError,
    import_error_list,
    import_error_message,
    import_file,
)
from core.models import ImportRun
from members.imports import import_phone_normalize, numbers_draw, numbers_redraw
from members.models import AuditEntry, ConsentEvent, Member
from members.numbers import InvalidPhone, member_no_is_valid, phone_normalize
from members.services import REFERRAL_ALPHABET
from tests.factories import MemberFactory, StoreFactory, UserFactory

pytestmark = pytest.mark.django_db

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")

EXAMPLE = """\
source_id,phone,name,email,gender,birthday,city,home_store,enrolled_at,consent_sms,consent_email
A1,138 1234 5678,张伟,ZW@Example.com,男,1990-05-17,上海,sh001,2019-03-08,是,否
A2,+86 139-0000-0001,李娜,,女,,,,2020-01-02T10:30:00,1,
A3,12345,王芳,,,,,,,,
A4,13900000002,,,,,,,,,
A5,13900000003,赵敏,,,1990-02-30,,,,,
A6,13900000004,陈静,,,,,XX999,,,
A7,13812345678,刘洋,,,,,,,,
A8,13900000005,周杰,,,,,,,,
A9,13900000006,吴刚,taken@example.com,,,,,,,
,13900000007,郑爽,,,,,,,,
A10,13900000008,孙丽,,X,,,,,maybe,
A1,13900000009,张伟,,,,,,,,
A11,13900000010,何平,,,,,,2099-01-01,,
OLD1,13900000011,旧会员,,,,,,,,
A12,13900000012,冯伟,,,,,,,,
"""

EXPECTED_PROBLEMS = [
    (4, "phone", "“12345” is not a valid mobile phone number."),
    (5, "name", "name is missing."),
    (6, "birthday", "“1990-02-30” is not a date in the form YYYY-MM-DD."),
    (7, "home_store", "There is no store with the code “XX999”."),
    (8, "phone", "The same phone number is on line 2."),
    (9, "phone", "The phone number already belongs to member {owner}."),
    (10, "email", "The e-mail address already belongs to member {email_owner}."),
    (11, "source_id", "source_id is missing."),
    (12, "gender", "“X” is not a gender: use F, M, O, 女, 男 or leave it blank."),
    (12, "consent_sms", "“maybe” is not yes or no: use 1/0, true/false, yes/no or 是/否."),
    (13, "source_id", "The same source_id is on line 2."),
    (14, "enrolled_at", "The enrolment time 2099-01-01 is in the future."),
]


@pytest.fixture
def world(store):
    """The store, an administrator, and the members the example file runs into."""
    return {
        "store": store,
        "admin": UserFactory(email="admin@example.com"),
        "owner": MemberFactory(phone="+8613900000005", name="原会员"),
        "email_owner": MemberFactory(phone="+8613700000001", email="taken@example.com"),
        "old": MemberFactory(
            phone="+8613700000002",
            name="早已导入",
            import_source_id="OLD1",
            enrolment_channel=Member.Channel.IMPORT,
        ),
    }


def run_import(world, content: str | bytes = EXAMPLE, name: str = "members.csv"):
    data = content.encode() if isinstance(content, str) else content
    return import_file(kind="members", file_name=name, content=data, actor=world["admin"])


def problems(member_import: ImportRun) -> list[tuple[int, str, str]]:
    with translation.override("en"):
        return [
            (error.line, error.column, import_error_message(error))
            for error in import_error_list(run=member_import)
        ]


def expected_problems(world) -> list[tuple[int, str, str]]:
    return [
        (
            line,
            column,
            text.format(owner=world["owner"].member_no, email_owner=world["email_owner"].member_no),
        )
        for line, column, text in EXPECTED_PROBLEMS
    ]


def test_every_bad_row_is_reported_with_its_line_and_reason(world):
    member_import = run_import(world)

    assert problems(member_import) == expected_problems(world)
    assert member_import.status == ImportRun.Status.DONE
    assert member_import.total_rows == 15
    assert member_import.processed_rows == 15
    assert member_import.created_count == 3
    assert member_import.existing_count == 1
    assert member_import.bad_count == 11


def test_good_rows_are_written_normalised_with_their_consents(world):
    run_import(world)

    imported = Member.objects.filter(import_source_id__in=["A1", "A2", "A12"])
    assert sorted(imported.values_list("import_source_id", "phone")) == [
        ("A1", "+8613812345678"),
        ("A12", "+8613900000012"),
        ("A2", "+8613900000001"),
    ]
    zhang = imported.get(import_source_id="A1")
    assert zhang.name == "张伟"
    assert zhang.email == "zw@example.com"
    assert zhang.gender == Member.Gender.MALE
    assert zhang.birthday == datetime.date(1990, 5, 17)
    assert zhang.city == "上海"
    assert zhang.home_store == world["store"]
    assert zhang.enrolled_at == datetime.datetime(2019, 3, 8, tzinfo=SHANGHAI)
    assert zhang.consent_sms is True
    assert zhang.consent_email is False
    assert zhang.enrolled_by == world["admin"]
    for member in imported:
        assert member.enrolment_channel == Member.Channel.IMPORT
        assert member_no_is_valid(member.member_no)
        assert len(member.referral_code) == 8
        assert set(member.referral_code) <= set(REFERRAL_ALPHABET)

    li = imported.get(import_source_id="A2")
    assert li.gender == Member.Gender.FEMALE
    # A time without an offset is Beijing time.
    assert li.enrolled_at == datetime.datetime(2020, 1, 2, 10, 30, tzinfo=SHANGHAI)

    events = ConsentEvent.objects.filter(member__in=imported)
    assert sorted(events.values_list("member__import_source_id", "kind", "granted")) == [
        ("A1", "email", False),
        ("A1", "sms", True),
        ("A2", "sms", True),
    ]
    assert set(events.values_list("source", flat=True)) == {ConsentEvent.Source.IMPORT}
    # A blank enrolled_at is the time of the import.
    feng = imported.get(import_source_id="A12")
    assert timezone.now() - feng.enrolled_at < datetime.timedelta(minutes=1)
    assert feng.consent_sms is False
    assert not feng.consent_events.exists()


def test_bad_rows_and_existing_members_are_left_alone(world):
    run_import(world)

    # 3 members of the fixture + 3 good rows; nothing of the bad rows.
    assert Member.objects.count() == 6
    assert not Member.objects.filter(phone="+8613900000002").exists()
    world["owner"].refresh_from_db()
    assert world["owner"].name == "原会员"
    world["old"].refresh_from_db()
    assert world["old"].name == "早已导入"  # already imported: not rewritten


def test_one_audit_entry_per_run_with_the_counts(world):
    member_import = run_import(world)

    entry = AuditEntry.objects.get(action="member.import")
    assert entry.actor == world["admin"]
    assert entry.target_id == str(member_import.pk)
    assert entry.details["created"] == 3
    assert entry.details["already_imported"] == 1
    assert entry.details["bad_rows"] == 11
    assert entry.details["file_name"] == "members.csv"
    assert AuditEntry.objects.count() == 1  # not one per member


def test_running_the_same_file_again_changes_nothing(world):
    first = run_import(world)
    members = {m.pk: (m.member_no, m.updated_at) for m in Member.objects.all()}
    events = ConsentEvent.objects.count()

    second = run_import(world)

    assert second.created_count == 0
    assert second.existing_count == 4
    assert second.bad_count == 11
    assert problems(second) == problems(first)
    assert {m.pk: (m.member_no, m.updated_at) for m in Member.objects.all()} == members
    assert ConsentEvent.objects.count() == events


def test_fixing_a_bad_row_and_running_again_adds_just_that_row(world):
    run_import(world)
    fixed = EXAMPLE.replace("A3,12345,王芳", "A3,13900000013,王芳")

    again = run_import(world, fixed)

    assert again.created_count == 1
    assert Member.objects.get(import_source_id="A3").phone == "+8613900000013"


def test_a_utf8_file_with_a_byte_order_mark_and_crlf_lines_is_read(world):
    content = "\ufeffsource_id,name,phone\r\nB1,王五,13912340000\r\n".encode()

    member_import = run_import(world, content)

    assert member_import.created_count == 1
    assert Member.objects.get(import_source_id="B1").phone == "+8613912340000"


@pytest.mark.parametrize("quote", ["", '"'])
def test_blank_lines_are_not_rows_and_the_total_counts_the_rest(world, quote):
    # A file without quotes is counted line by line; with them the csv module reads it.
    content = (
        f"source_id,phone,name\n\nB1,13912340001,甲\n   \r\n,,\rB2,13912340002,{quote}乙{quote}\n\n"
    )

    member_import = run_import(world, content)

    assert member_import.total_rows == member_import.processed_rows == 3
    assert member_import.created_count == 2
    assert [line for line, _column, _text in problems(member_import)] == [5, 5, 5]


def test_backslashes_tabs_and_line_breaks_in_a_cell_are_kept_as_written(world):
    content = (
        "source_id,phone,name,city\n"
        'D1,13912340009,"A\\B\tC",上海\\浦东\n'
        'D2,13912340010,"多\n行",北京\n'
    )

    member_import = run_import(world, content)

    assert member_import.created_count == 2
    assert Member.objects.get(import_source_id="D1").name == "A\\B\tC"
    assert Member.objects.get(import_source_id="D1").city == "上海\\浦东"
    assert Member.objects.get(import_source_id="D2").name == "多\n行"


def test_a_date_on_many_lines_is_checked_on_every_line(world):
    # The checker reads each distinct date once a run; its verdict holds for every line.
    content = (
        "source_id,phone,name,birthday,enrolled_at\n"
        "E1,13912340021,甲,1990-02-30,2099-01-01\n"
        "E2,13912340022,乙,1985-06-01,2020-01-02T10:30:00\n"
        "E3,13912340023,丙,1990-02-30,2099-01-01\n"
        "E4,13912340024,丁,1985-06-01,2020-01-02T10:30:00\n"
        "E5,13912340025,戊,1850-01-01,2021-05-05\n"
        "E6,13912340026,己,1850-01-01,2021-05-05\n"
    )

    member_import = run_import(world, content)

    assert [(line, column) for line, column, _text in problems(member_import)] == [
        (2, "birthday"),
        (2, "enrolled_at"),
        (4, "birthday"),
        (4, "enrolled_at"),
        (6, "birthday"),
        (7, "birthday"),
    ]
    written = Member.objects.filter(import_source_id__in=["E2", "E4"])
    assert {member.birthday for member in written} == {datetime.date(1985, 6, 1)}
    assert {member.enrolled_at for member in written} == {
        datetime.datetime(2020, 1, 2, 10, 30, tzinfo=SHANGHAI)
    }


def test_lines_that_do_not_match_the_header_are_reported(world):
    content = "source_id,phone,name\nC1,13912340001\nC2,13912340002,张三,,\nC3,13912340003,李四,x\n"

    member_import = run_import(world, content)

    assert problems(member_import) == [
        (2, "", "The line has 2 fields but the header has 3."),
        (4, "", "The line has 4 fields but the header has 3."),
    ]
    # Trailing empty cells, as spreadsheets write them, are fine.
    assert member_import.created_count == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty."),
        (b"  \n", "The file is empty."),
        (b"source_id,phone,name\n", "The file has a header but no members below it."),
        ("编号,手机,姓名\n1,13800000000,张三\n".encode("gb18030"), "The file is not UTF-8 text."),
        (b"PK\x03\x04\x00\x00binary", "This is not a CSV file."),
        (
            "A1,13800000000,张三\n".encode(),
            "The first line must be a header naming the columns; source_id, phone, name missing.",
        ),
    ],
)
def test_a_file_that_cannot_be_imported_is_refused_and_nothing_is_written(world, content, message):
    with translation.override("en"), pytest.raises(ImportFileError) as error:
        run_import(world, content)

    assert str(error.value).startswith(message)
    assert not ImportRun.objects.exists()
    assert Member.objects.count() == 3
    assert not AuditEntry.objects.exists()


def test_the_fast_phone_check_agrees_with_the_phone_library():
    # The import checks Chinese mobiles with the library's own pattern, skipping the
    # library's slow parse; every prefix must give the same answer either way.
    rng = random.Random(7)
    for prefix in range(1000, 2000):
        for _ in range(3):
            national = f"{prefix}{rng.randrange(10**7):07d}"
            for text in (national, f"+86{national}", f"86 {national[:3]} {national[3:]}"):
                try:
                    expected = phone_normalize(text)
                except InvalidPhone:
                    expected = None
                try:
                    got = import_phone_normalize(text)
                except InvalidPhone:
                    got = None
                assert got == expected, text


def test_drawn_numbers_that_are_taken_are_drawn_again(world):
    taken = world["owner"]
    member_nos = {taken.member_no, "800000000001"}
    codes = {taken.referral_code, "ABCDEFGH"}

    numbers_redraw(member_nos, codes, [(taken.member_no, taken.referral_code)])

    assert taken.member_no not in member_nos
    assert taken.referral_code not in codes
    assert len(member_nos) == 2
    assert len(codes) == 2


def test_a_referral_code_already_in_use_is_drawn_again(world, monkeypatch):
    # New codes are looked up only when a batch is tried again: the unique index turns the
    # first try away, and the second draws and checks afresh.
    taken = world["owner"].referral_code
    draws = []

    def draw(count):
        member_nos, codes = numbers_draw(count)
        if not draws:
            codes = {taken}
        draws.append(count)
        return member_nos, codes

    monkeypatch.setattr("members.imports.numbers_draw", draw)

    member_import = run_import(world, "source_id,phone,name\nR1,13912340031,甲\n")

    assert member_import.created_count == 1
    assert draws == [1, 1]
    assert Member.objects.filter(referral_code=taken).count() == 1
    assert Member.objects.get(import_source_id="R1").referral_code != taken


def test_rows_are_written_in_batches_and_report_progress(world, monkeypatch):
    monkeypatch.setattr("core.imports.runner.BATCH_SIZE", 4)
    steps = []

    member_import = import_file(
        kind="members", file_name="members.csv", content=EXAMPLE.encode(), progress=steps.append
    )

    assert [step.processed for step in steps] == [4, 8, 12, 15]
    assert all(step.total == 15 for step in steps)
    assert steps[-1].created == 3
    # Duplicates across batches are still found: line 13 repeats line 2's source_id.
    assert problems(member_import) == expected_problems(world)


# --- manage.py import_members -------------------------------------------------------------


def call_import(*args: str) -> tuple[list[str], str]:
    out, err = StringIO(), StringIO()
    with translation.override("en"):
        call_command("import_members", *args, stdout=out, stderr=err)
    return out.getvalue().splitlines(), err.getvalue()


def test_the_command_lists_bad_lines_and_ends_with_the_counts(world, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text(EXAMPLE, encoding="utf-8")

    lines, err = call_import(str(path))

    assert "line 4: phone: “12345” is not a valid mobile phone number." in lines
    assert "line 13: source_id: The same source_id is on line 2." in lines
    summary = "Imported members.csv: 15 rows. Created: 3. Already imported: 1. Bad rows: 11."
    assert summary in lines
    assert "15 / 15 rows (100%)" in err
    assert AuditEntry.objects.get(action="member.import").actor_label == (
        "manage.py import_members"
    )


def test_the_command_run_twice_creates_nothing_the_second_time(world, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text(EXAMPLE, encoding="utf-8")
    call_import(str(path))

    lines, _err = call_import(str(path), "--quiet-progress")

    assert "Imported members.csv: 15 rows. Created: 0. Already imported: 4. Bad rows: 11." in lines
    assert Member.objects.count() == 6


def test_the_command_refuses_a_missing_or_unreadable_file(world, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_import(str(tmp_path / "nope.csv"))
    path = tmp_path / "members.csv"
    path.write_bytes(b"source_id,phone,name\n")
    with pytest.raises(CommandError, match="no members below it"):
        call_import(str(path))


def test_the_command_help_lists_the_columns():
    from members.management.commands.import_members import Command

    for column in ("source_id", "phone", "name", "home_store", "enrolled_at", "consent_sms"):
        assert column in Command.help


# --- manage.py bench import ---------------------------------------------------------------


def test_bench_import_prints_its_result_as_json_on_the_last_line():
    StoreFactory(code="SH001")
    out, err = StringIO(), StringIO()

    call_command("bench", "import", "--rows", "300", "--seed", "1", stdout=out, stderr=err)

    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert result["job"] == "import_members"
    assert result["rows"] == 300
    assert result["seconds"] > 0
    assert result["rows_per_s"] > 0
    assert "300 / 300 rows" in err.getvalue()
    member_import = ImportRun.objects.get()
    # About 1% bad rows, deliberately; everything else is created.
    assert member_import.bad_count < 20
    assert member_import.created_count == 300 - member_import.bad_count


# --- Bad values: each is its row's error, the good rows are written ------------------------

OVERLONG = "x" * 200_000  # past the csv module's field limit

BAD_VALUES = (
    "source_id,phone,name,birthday,city,enrolled_at\n"
    "V1,13900000101,好人,,,1990-01-01\n"
    "V2,13900000102,坏\x00人,,,\n"
    "V3,13900000103,早人,,,1989-12-31T23:59:59\n"
    "V4,13900000104,古人,,,0001-01-01\n"
    "V5,13900000105,来人,,,9999-12-31\n"
    "V6,13900000106,老人,0001-01-01,,\n"
    "V7,13900000107,新人,9999-12-31,,\n"
    f"V8,13900000108,{'名' * 101},,,\n"
    f"V9,13900000109,城人,,{'城' * 101},\n"
    "V\x0010,13900000110,零人,,,\n"
    "V11,3000000000,大人,,,\n"
    f'V12,13900000112,"{OVERLONG}",,,\n'
    "V13,13900000113,好人二,,,2020-05-05\n"
)

BAD_VALUE_PROBLEMS = [
    (3, "name", "name holds a NUL character (\\0), which cannot be stored."),
    (4, "enrolled_at", "The enrolment time 1989-12-31T23:59:59 is before 1990-01-01."),
    (5, "enrolled_at", "The enrolment time 0001-01-01 is before 1990-01-01."),
    (6, "enrolled_at", "The enrolment time 9999-12-31 is in the future."),
    (
        7,
        "birthday",
        "The birthday 0001-01-01 is in the future or too early"
        " (before 1900 or over 120 years ago).",
    ),
    (
        8,
        "birthday",
        "The birthday 9999-12-31 is in the future or too early"
        " (before 1900 or over 120 years ago).",
    ),
    (9, "name", "name is longer than 100 characters."),
    (10, "city", "city is longer than 50 characters."),
    (11, "source_id", "source_id holds a NUL character (\\0), which cannot be stored."),
    (12, "phone", "“3000000000” is not a valid mobile phone number."),
    (13, "", "A field of this line is longer than 131072 characters."),
]


def test_a_bad_value_is_its_rows_error_and_the_good_rows_are_written(world):
    member_import = run_import(world, BAD_VALUES)

    assert member_import.status == ImportRun.Status.DONE
    assert problems(member_import) == BAD_VALUE_PROBLEMS
    assert (member_import.created_count, member_import.bad_count) == (2, 11)
    assert sorted(
        Member.objects.filter(import_source_id__startswith="V").values_list(
            "import_source_id", flat=True
        )
    ) == ["V1", "V13"]
    # The report shows the NUL of a source_id as ␀; nothing with a NUL reaches the database.
    assert member_import.errors.get(line=11).ref == "V␀10"

    again = run_import(world, BAD_VALUES)
    assert (again.created_count, again.existing_count, again.bad_count) == (0, 2, 11)
    assert problems(again) == BAD_VALUE_PROBLEMS


def test_the_earliest_enrolment_date_is_a_setting(world, settings):
    settings.IMPORT_EARLIEST_DATE = datetime.date(2000, 1, 1)

    member_import = run_import(
        world, "source_id,phone,name,enrolled_at\nW1,13900000201,甲,1999-12-31\n"
    )

    assert problems(member_import) == [
        (2, "enrolled_at", "The enrolment time 1999-12-31 is before 2000-01-01.")
    ]


def gbk(text: str) -> bytes:
    content = text.encode("gbk")
    content.decode("utf-8")  # these GBK bytes happen to be valid UTF-8 too
    return content


@pytest.mark.parametrize(
    "content",
    [
        # 卢梅, 鲁平, 莫平 in GBK read as UTF-8 "¬÷", "³ƽ", "Īƽ"; 毛毛 as "ëë".
        gbk(
            "source_id,phone,name\nG1,13900000301,卢梅\nG2,13900000302,鲁平\nG3,13900000303,莫平\n"
        ),
        gbk("source_id,phone,name\nG1,13900000301,毛毛\n"),
        gbk("source_id,phone,name\nG1,13900000301,鲁平\n"),
    ],
)
def test_a_gbk_file_that_is_valid_utf8_too_is_refused_with_the_gbk_hint(world, content):
    with translation.override("en"), pytest.raises(ImportFileError) as error:
        run_import(world, content)

    assert str(error.value) == (
        "The file is not UTF-8 text. In Excel choose “Save as” → “CSV UTF-8 (comma delimited)” "
        "and upload that file."
    )
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize(
    "name",
    [
        "Zoë Müller",
        "José",
        "Иван Петров",
        "Νίκος",
        "محمد",
        "王·五",
        "阿依古丽·买买提",
        "Łucja",
        "é",
    ],
)
def test_utf8_names_in_other_alphabets_are_not_taken_for_gbk(world, name):
    content = f"source_id,phone,name,city\nU1,13900000401,{name},上海\n".encode()

    member_import = run_import(world, content)

    assert member_import.created_count == 1
    assert Member.objects.get(import_source_id="U1").name == name


def test_a_workbook_or_utf16_file_is_still_refused_as_a_whole(world):
    for content in (
        b"PK\x03\x04\x14\x00\x06\x00",
        "source_id,phone,name\nA1,13800000000,张三\n".encode("utf-16-le"),
    ):
        with translation.override("en"), pytest.raises(ImportFileError) as error:
            run_import(world, content)
        assert str(error.value).startswith("This is not a CSV file.")


def test_a_row_the_database_refuses_after_all_is_its_error_and_the_rest_is_written(
    world, monkeypatch
):
    # Should a value the row checker does not know of reach the database and be refused,
    # the batch is written in halves down to that row, which is reported; the run goes on.
    from django.db import DataError

    from members import imports

    write = imports.MemberImportJob._write

    def refusing_write(self, rows, *, check_codes):
        result = write(self, rows, check_codes=check_codes)
        if any(row.source_id == "R3" for row in rows):
            raise DataError("value out of range for type integer\nCONTEXT: COPY members_member")
        return result

    monkeypatch.setattr(imports.MemberImportJob, "_write", refusing_write)
    content = "source_id,phone,name\n" + "".join(
        f"R{i},1390000050{i},会员{i}\n" for i in range(1, 6)
    )

    member_import = run_import(world, content)

    assert member_import.status == ImportRun.Status.DONE
    assert problems(member_import) == [
        (4, "", "The database refused this row: value out of range for type integer")
    ]
    assert (member_import.created_count, member_import.bad_count) == (4, 1)
    stored = ImportRun.objects.get(pk=member_import.pk)
    assert (stored.processed_rows, stored.created_count, stored.bad_count) == (5, 4, 1)
    assert sorted(
        Member.objects.filter(import_source_id__startswith="R").values_list(
            "import_source_id", flat=True
        )
    ) == ["R1", "R2", "R4", "R5"]


def test_a_nul_in_an_ignored_column_of_the_header_is_shown_not_stored(world):
    member_import = run_import(world, "source_id,phone,name,no\x00te\nN1,13900000601,甲,x\n")

    assert member_import.created_count == 1
    assert ImportRun.objects.get(pk=member_import.pk).ignored_columns == ["no␀te"]
