"""Write a new round of responses from the current model, for annotators to judge.

    manage.py generate_responses --round 1                            # the embedded base model
    manage.py generate_responses --round 2 --adapter runs/run-1 --prompts round=1 --limit 200

    manage.py generate_responses --round 2 --adapter runs/run-1 --queue   # a worker does it

Idempotent: a prompt that already has a response in the round gets no second one, so an
interrupted run is finished by running the same command again.

--queue records a GenerationRun, queues it for a worker (`manage.py db_worker --queue-name
gpu`) and returns at once; the worker runs `generate_responses --job N`, which reads the
options from that row and writes its progress there.
"""

import argparse
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from annotate import generation, jobs, models, workers
from annotate import validators as v
from training import generate as gen
from training import models as training_models

# Responses generated and saved together: what an interruption can lose at most.
CHUNK = 64
# The options a GenerationRun stores (the rest are the command's defaults).
JOB_OPTIONS = (
    "adapter",
    "base_model",
    "prompts",
    "limit",
    "overlap",
    "max_new_tokens",
    "batch_size",
)


def parse_prompts(value: str) -> dict:
    try:
        return generation.parse_prompts(value)
    except ValueError:
        raise CommandError(
            f"--prompts must be all, source=NAME or round=N. Got {value!r}."
        ) from None


class Command(BaseCommand):
    help = "Generate one response per prompt into round N, from a base model or an adapter."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--round", type=int, help="The round to fill (required).")
        parser.add_argument("--adapter", help="A train_cut output directory (LoRA adapter).")
        parser.add_argument(
            "--base-model", help="Local model directory. Default: the adapter's, or embedded."
        )
        parser.add_argument(
            "--prompts", default="all", help="all (default), source=NAME or round=M."
        )
        parser.add_argument("--limit", type=int, help="At most this many prompts (by id).")
        parser.add_argument("--overlap", type=int, default=1, help="Judgments per response.")
        parser.add_argument("--max-new-tokens", type=int, default=256)
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Record a generation run, queue it for a worker and return at once.",
        )
        # The worker's child: the options come from GenerationRun N.
        parser.add_argument("--job", type=int, help=argparse.SUPPRESS)

    def handle(self, *args, **options) -> None:
        self.job = None
        if options["job"] is not None:
            self.job = models.GenerationRun.objects.get(pk=options["job"])
            options.update({name: getattr(self.job, name) or None for name in JOB_OPTIONS})
            options["round"] = self.job.round_number
        if options["round"] is None:
            raise CommandError("--round is required: the round number to fill.")
        if options["round"] < 0:
            raise CommandError("--round must be a round number (0 or more).")
        for name in ("overlap", "max_new_tokens", "batch_size"):
            if options[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        if options["limit"] is not None and options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        if options["queue"]:
            return self.enqueue(options)
        base, adapter = self.check_model(options)
        selected = self.select_prompts(options)
        round = self.get_round(options["round"], base, adapter)
        todo = list(selected.exclude(responses__round=round).order_by("pk"))
        generator = gen.generator_name(base, adapter)
        self.progress(prompt_count=len(todo))
        if not todo:
            self.stdout.write(f"{round} already has a response to every selected prompt.")
            return
        self.stdout.write(f"{round}: generating {len(todo)} responses with {generator}.")
        model, tokenizer, template = gen.load_for_generation(base, adapter, log=self.stdout.write)
        created = empty = 0
        for start in range(0, len(todo), CHUNK):
            prompts = todo[start : start + CHUNK]
            texts = gen.generate(
                model,
                tokenizer,
                [{"instruction": p.instruction, "input": p.input} for p in prompts],
                template=template,
                max_new_tokens=options["max_new_tokens"],
                batch_size=options["batch_size"],
            )
            saved, skipped = self.save(round, prompts, texts, generator, options["overlap"])
            created, empty = created + saved, empty + skipped
            self.stdout.write(f"{start + len(prompts)}/{len(todo)} done.")
            self.progress(
                done_count=start + len(prompts), created_count=created, empty_count=empty
            )
        self.stdout.write(self.style.SUCCESS(f"{round}: {created} new responses."))
        if empty:
            self.stdout.write(f"{empty} prompts got an empty response and were left out.")

    def progress(self, **counts) -> None:
        """Under a worker: the counts on the GenerationRun, for its page."""
        if self.job is not None:
            models.GenerationRun.objects.filter(pk=self.job.pk).update(**counts)

    def enqueue(self, options: dict) -> None:
        """Fast checks, then record and queue; a path missing here is only a warning."""
        parse_prompts(options["prompts"])
        adapter = options["adapter"] or ""
        try:
            base, resolved = self.check_model(options)
            adapter = resolved or ""
        except CommandError as error:
            self.stderr.write(f"Warning: {error} (the worker checks again on its machine).")
        try:
            run = generation.new_generation_run(
                options["round"],
                adapter=adapter,
                base_model=options["base_model"] or "",
                **{name: options[name] for name in JOB_OPTIONS[2:]},
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        jobs.enqueue_generation(run)
        self.stdout.write(
            f"Generation run {run.pk} queued: round {run.round_number} on the {jobs.QUEUE} queue."
        )
        if not workers.alive(jobs.QUEUE):
            self.stdout.write(
                f"No worker is listening on the {jobs.QUEUE} queue yet: start one with "
                f"`python manage.py db_worker --queue-name {jobs.QUEUE}`."
            )

    def check_model(self, options: dict) -> tuple[str | None, str | None]:
        """Resolve and check the adapter and base model before anything loads."""
        adapter = options["adapter"]
        try:
            trained = gen.check_adapter(adapter) if adapter else None
            base = options["base_model"]
            if base is None and trained is not None:
                base = trained.base_model
            training_models.check_base_model(base)
        except ValueError as error:
            raise CommandError(str(error)) from error
        if adapter:
            adapter = str(Path(adapter).expanduser().resolve())
        return base, adapter

    def get_round(self, number: int, base: str | None, adapter: str | None) -> models.Round:
        base_name = training_models.check_base_model(base)
        run = models.TrainingRun.objects.filter(output_dir=adapter).first() if adapter else None
        if conflict := generation.round_conflict(number, base_name, adapter or ""):
            raise CommandError(conflict)
        round, _ = models.Round.objects.get_or_create(
            number=number,
            defaults={"base_model": base_name, "adapter": adapter or "", "training_run": run},
        )
        return round

    def select_prompts(self, options: dict):
        parse_prompts(options["prompts"])
        try:
            return generation.select_prompts(options["prompts"], options["limit"])
        except ValueError:
            raise CommandError(f"No prompts match --prompts {options['prompts']}.") from None

    def save(
        self,
        round: models.Round,
        prompts: list[models.Prompt],
        texts: list[str],
        generator: str,
        overlap: int,
    ) -> tuple[int, int]:
        """Store one chunk; returns (responses created, empty responses left out)."""
        with transaction.atomic():
            # Locking the round serialises two commands filling it, so neither duplicates.
            models.Round.objects.select_for_update().get(pk=round.pk)
            done = set(
                models.Response.objects.filter(round=round, prompt__in=prompts).values_list(
                    "prompt_id", flat=True
                )
            )
            rows = [
                models.Response(
                    prompt=prompt,
                    text=text[: v.MAX_RESPONSE_CHARS],
                    generator=generator[: v.MAX_GENERATOR_CHARS],
                    round=round,
                    overlap=overlap,
                )
                for prompt, text in zip(prompts, texts, strict=True)
                if text.strip() and prompt.pk not in done
            ]
            models.Response.objects.bulk_create(rows)
        return len(rows), sum(not t.strip() for t in texts)
