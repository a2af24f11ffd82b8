"""Choosing what a generation round answers, and recording a generation job.

Torch-free: the web process (a "generate the next round" form, comparisons) records a
GenerationRun with new_generation_run() and queues it with jobs.enqueue_generation(); the
worker's child `manage.py generate_responses --job N` does the model work.
"""

from django.core.exceptions import ValidationError

from annotate import models


def parse_prompts(value: str) -> dict:
    """ "all", "source=NAME" or "round=M" -> filter keyword arguments for Prompt."""
    if value == "all":
        return {}
    key, sep, arg = value.partition("=")
    if sep and key == "source" and arg:
        return {"source": arg}
    if sep and key == "round" and arg.isdigit():
        return {"responses__round_id": int(arg)}
    raise ValueError(f"Prompts must be all, source=NAME or round=N. Got {value!r}.")


def select_prompts(prompts: str, limit: int | None = None):
    """The selected prompts (at most `limit`, by id) as a queryset; ValueError if none."""
    selected = models.Prompt.objects.filter(**parse_prompts(prompts)).distinct().order_by("pk")
    if limit is not None:
        selected = selected[:limit]
    ids = list(selected.values_list("pk", flat=True))
    if not ids:
        raise ValueError(f"No prompts match {prompts!r}.")
    return models.Prompt.objects.filter(pk__in=ids)


def round_conflict(number: int, base_model: str, adapter: str) -> str:
    """Why round `number` cannot take responses of this model ("" when it can). A blank
    base model means "the adapter's, or the embedded one": only the adapter is compared."""
    round = models.Round.objects.filter(pk=number).first()
    if round is None or (
        round.adapter == adapter and (not base_model or round.base_model == base_model)
    ):
        return ""
    was = round.adapter or round.base_model or "another model"
    return f"{round} was generated with {was}. Use a new round number for another model."


def new_generation_run(
    round_number: int,
    *,
    training_run: models.TrainingRun | None = None,
    adapter: str = "",
    base_model: str = "",
    prompts: str = "all",
    limit: int | None = None,
    overlap: int = 1,
    max_new_tokens: int = 256,
    batch_size: int = 8,
    created_by=None,
) -> models.GenerationRun:
    """Validate and save a queued GenerationRun (not yet enqueued: jobs.enqueue_generation).

    A training run stands for its adapter (its output directory) and base model. Raises
    ValidationError with a message per field; nothing is saved then.
    """
    if training_run is not None:
        if training_run.status != models.JobStatus.SUCCEEDED:
            raise ValidationError(
                {"training_run": f"{training_run} has no adapter yet: it has not succeeded."}
            )
        adapter = adapter or training_run.output_dir
        base_model = base_model or training_run.base_model
    elif adapter:
        training_run = models.TrainingRun.objects.filter(output_dir=adapter).first()
    run = models.GenerationRun(
        round_number=round_number,
        training_run=training_run,
        adapter=adapter,
        base_model=base_model,
        prompts=prompts,
        limit=limit,
        overlap=overlap,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        created_by=created_by,
    )
    run.full_clean()
    errors = {}
    try:
        select_prompts(prompts, limit)
    except ValueError as error:
        errors["prompts"] = str(error)
    if limit is not None and limit < 1:
        errors["limit"] = "The limit must be at least 1."
    if conflict := round_conflict(round_number, base_model, adapter):
        errors["round_number"] = conflict
    if errors:
        raise ValidationError(errors)
    run.save()
    return run
