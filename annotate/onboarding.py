"""Onboarding a crowd: many accounts at once, each with a one-time set-password link.

Input is one person a line, `username[,email[,role]]` (CSV; blank lines and lines starting
with "#" are skipped, and so is a header line starting "username"). The role is
`annotator` or `reviewer`; a line without one gets the default the staff member chose.
Every line is checked first, and every problem is named with its line number: a bad
username or email, an unknown role, a username given twice in the file, one that exists
already. Any problem and nothing is created; otherwise all accounts are created in one
transaction.

The accounts start with no usable password. Each link is Django's password-reset link
(default_token_generator, PasswordResetConfirmView under accounts/): it works once, since
setting the password changes what the token is made from, and expires after
PASSWORD_RESET_TIMEOUT. No mail server is involved: the links are shown once to the staff
member (page or command) and can be saved as CSV. They are not stored anywhere.
"""

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import Group, User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from annotate import roles

ROLES = {"annotator": roles.ANNOTATORS, "reviewer": roles.REVIEWERS}
MAX_PEOPLE = 5000


class OnboardingError(Exception):
    """The input has problems; .problems lists each, with its line number."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class Person:
    line: int
    username: str
    email: str
    role: str
    link: str = ""


def parse(text: str, default_role: str) -> list[Person]:
    """The people in text, or OnboardingError naming every bad line."""
    if default_role not in ROLES:
        raise OnboardingError([f"Unknown role {default_role!r}: use annotator or reviewer."])
    people: list[Person] = []
    problems: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    for number, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if not people and not problems and cells[0].lower() == "username":
            continue  # a header line
        where = f"Line {number}"
        if len(cells) > 3:
            problems.append(
                (number, f"{where}: expected username[,email[,role]], got {len(cells)} columns.")
            )
            continue
        username, email, role = (cells + ["", ""])[:3]
        role = role.lower() or default_role
        line_problems = _check(username, email, role)
        key = username.lower()
        if username and key in first_line:
            line_problems.append(f"{username!r} is also on line {first_line[key]}.")
        first_line.setdefault(key, number)
        if line_problems:
            problems.extend((number, f"{where}: {problem}") for problem in line_problems)
        else:
            people.append(Person(number, username, email, role))
    if len(people) > MAX_PEOPLE:
        raise OnboardingError([f"At most {MAX_PEOPLE} people at a time; split the list."])
    problems.extend(_existing(people))
    if problems:
        raise OnboardingError([text for _, text in sorted(problems, key=lambda p: p[0])])
    if not people:
        raise OnboardingError(["No one to add: give one username a line."])
    return people


def _check(username: str, email: str, role: str) -> list[str]:
    problems = []
    if not username:
        problems.append("the username is missing.")
    else:
        field = User._meta.get_field("username")
        try:
            field.run_validators(username)
            if len(username) > field.max_length:
                raise ValidationError(f"at most {field.max_length} characters")
        except ValidationError as error:
            problems.append(f"{username!r} is not a valid username ({' '.join(error.messages)})")
    if email:
        try:
            validate_email(email)
        except ValidationError:
            problems.append(f"{email!r} is not a valid email address.")
    if role not in ROLES:
        problems.append(f"unknown role {role!r}: use annotator or reviewer.")
    return problems


def _existing(people: list[Person]) -> list[tuple[int, str]]:
    # Case-insensitively: "Alice" beside an existing "alice" is a mistake, not a new person.
    by_key = {person.username.lower(): person for person in people}
    keys = list(by_key)
    taken = []
    for start in range(0, len(keys), 1000):
        taken.extend(
            User.objects.annotate(key=Lower("username"))
            .filter(key__in=keys[start : start + 1000])
            .values_list("username", flat=True)
        )
    problems = []
    for name in taken:
        person = by_key[name.lower()]
        also = "" if name == person.username else f" (as {name!r})"
        problems.append(
            (
                person.line,
                f"Line {person.line}: the username {person.username!r} exists already{also}.",
            )
        )
    return problems


def create(people: list[Person], absolute: Callable[[str], str]) -> list[Person]:
    """Create the accounts (all or none) and fill in each person's link; absolute() turns a
    path into the URL people open."""
    groups = {role: Group.objects.get_or_create(name=name)[0] for role, name in ROLES.items()}
    with transaction.atomic():
        for person in people:
            user = User(username=person.username, email=person.email)
            user.set_unusable_password()
            user.save()
            user.groups.add(groups[person.role])
            person.link = absolute(set_password_path(user))
    return people


def set_password_path(user: User) -> str:
    return reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )


def as_csv(people: list[Person]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["username", "email", "role", "set_password_link"])
    writer.writerows([p.username, p.email, p.role, p.link] for p in people)
    return out.getvalue()
