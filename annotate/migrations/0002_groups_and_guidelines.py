from django.db import migrations

GUIDELINES = """\
Read the instruction, then the response, and decide:

- **Good (1)** — the response does what was asked, is correct, and has no problem worth
  mentioning. A short note is welcome but not required.
- **Has problems (2)** — anything a careful expert would object to: a factual error, a
  bug in code, a missed part of the instruction, padding, an unsafe suggestion. Write the
  critique as you would to the author: say *what* is wrong and *why*, concretely
  ("Lithium-7 is about 92.5%, not 50%"). Highlight the passage if it helps.

Skip (S) only when you cannot judge the response (outside your expertise, unreadable),
and say why.
"""


def create(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ("annotators", "reviewers"):
        Group.objects.get_or_create(name=name)
    Guideline = apps.get_model("annotate", "Guideline")
    if not Guideline.objects.exists():
        Guideline.objects.create(title="Annotation guidelines", body=GUIDELINES)


def remove(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["annotators", "reviewers"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("annotate", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create, remove)]
