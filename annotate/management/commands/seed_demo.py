"""Demo accounts and a small demo dataset, so a fresh checkout shows a working app.

    manage.py seed_demo

Safe to run again: it creates only what is missing and leaves existing passwords alone.
The passwords are fixed and printed; they are for a laptop demo, not for a server.
"""

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import F

from annotate import demo_data, imports, models, roles

SOURCE = "demo"
ROUND = 1
# username -> (role shown to the user, group, is_staff)
ACCOUNTS = {
    "admin": ("staff: the admin at /admin/", None, True),
    "alice": ("annotator", roles.ANNOTATORS, False),
    "bob": ("annotator", roles.ANNOTATORS, False),
    "rita": ("reviewer", roles.REVIEWERS, False),
}


def demo_password(username: str) -> str:
    return f"demo-{username}-pass"


class Command(BaseCommand):
    help = "Create demo accounts and a demo round of prompts and responses."

    def handle(self, *args, **options) -> None:
        with transaction.atomic():
            created = self.create_accounts()
            summary = self.load_prompts()
            judged = self.add_judgments()
        self.stdout.write("Demo accounts (log in at /accounts/login/):")
        for username, (role, _, _) in ACCOUNTS.items():
            note = "" if username in created else "  (already existed; password left as it was)"
            self.stdout.write(f"  {username:<6} {demo_password(username):<16} {role}{note}")
        self.stdout.write(
            f"Demo data in round {ROUND}: {summary.prompts_created} prompts and "
            f"{summary.responses_created} responses added, {summary.unchanged} already there; "
            f"{judged} demo judgments added."
        )

    def create_accounts(self) -> set[str]:
        User = get_user_model()
        created = set()
        for username, (_, group, staff) in ACCOUNTS.items():
            user, new = User.objects.get_or_create(
                username=username,
                defaults={
                    "email": f"{username}@example.org",
                    "is_staff": staff,
                    "is_superuser": staff,
                },
            )
            if new:
                password = demo_password(username)
                password_validation.validate_password(password, user)
                user.set_password(password)
                user.save(update_fields=["password"])
                created.add(username)
            if group:
                user.groups.add(Group.objects.get(name=group))
        return created

    def load_prompts(self) -> imports.ImportSummary:
        total = imports.ImportSummary()
        for overlap in (1, 2):
            records = [
                (f"demo_data.PROMPTS[{i}]", self.record(p))
                for i, p in enumerate(demo_data.PROMPTS)
                if (p["id"] in demo_data.OVERLAP_2) == (overlap == 2)
            ]
            summary = imports.import_records(
                records, source=SOURCE, round_number=ROUND, overlap=overlap
            )
            total.prompts_created += summary.prompts_created
            total.responses_created += summary.responses_created
            total.unchanged += summary.unchanged
        models.Round.objects.filter(number=ROUND, base_model="").update(
            base_model="demo (responses written by hand)"
        )
        return total

    @staticmethod
    def record(prompt: dict) -> dict:
        return {
            "id": prompt["id"],
            "instruction": prompt["instruction"],
            "input": prompt["input"],
            "output": prompt["output"],
            "generator": "demo",
            "kind": prompt["kind"],
        }

    def add_judgments(self) -> int:
        User = get_user_model()
        outputs = {p["id"]: p["output"] for p in demo_data.PROMPTS}
        added = 0
        for external_id, verdicts in demo_data.JUDGMENTS.items():
            # By text too: later rounds may add other responses to the same prompt.
            response = models.Response.objects.get(
                prompt__source=SOURCE, prompt__external_id=external_id, text=outputs[external_id]
            )
            for username, critique in verdicts.items():
                _, new = models.Judgment.objects.get_or_create(
                    response=response,
                    annotator=User.objects.get(username=username),
                    defaults={
                        "verdict": "positive" if critique is None else "negative",
                        "critique": critique or "",
                    },
                )
                if new:
                    models.Response.objects.filter(pk=response.pk).update(
                        judgment_count=F("judgment_count") + 1
                    )
                    added += 1
        return added
