"""The staff page that adds many people at once (annotate/onboarding.py does the work)."""

from functools import wraps
from urllib.parse import quote

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from annotate import onboarding

MAX_UPLOAD_BYTES = 2 * 1024 * 1024


def staff_required(view):
    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("Only staff add people.")
        return view(request, *args, **kwargs)

    return wrapper


class AddUsersForm(forms.Form):
    people = forms.CharField(
        label="People, one a line: username[,email[,role]]",
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text="e.g. “ada,ada@example.org” or “rita,,reviewer”. A line without a role "
        "gets the role below.",
    )
    file = forms.FileField(
        label="…or a file of such lines (CSV or text)",
        required=False,
    )
    role = forms.ChoiceField(
        label="Role", choices=[("annotator", "Annotator"), ("reviewer", "Reviewer")]
    )

    def clean(self) -> dict:
        data = super().clean()
        upload = data.get("file")
        text = data.get("people") or ""
        if upload:
            if upload.size > MAX_UPLOAD_BYTES:
                raise forms.ValidationError("The file is larger than 2 MB; split it.")
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                raise forms.ValidationError("The file is not UTF-8 text.") from None
        if not text.strip() and not self.errors:
            raise forms.ValidationError("Give one username a line, or choose a file.")
        data["text"] = text
        return data


@never_cache
@staff_required
def add_users(request: HttpRequest) -> HttpResponse:
    form = AddUsersForm(request.POST or None, request.FILES or None)
    problems: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            people = onboarding.parse(form.cleaned_data["text"], form.cleaned_data["role"])
        except onboarding.OnboardingError as error:
            problems = error.problems
        else:
            onboarding.create(people, request.build_absolute_uri)
            table = onboarding.as_csv(people)
            context = {
                "people": people,
                "csv_href": "data:text/csv;charset=utf-8," + quote(table),
            }
            return render(request, "annotate/users_added.html", context)
    return render(request, "annotate/users_add.html", {"form": form, "problems": problems})
