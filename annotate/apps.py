from django.apps import AppConfig


class AnnotateConfig(AppConfig):
    name = "annotate"
    verbose_name = "Critique Loop"

    def ready(self) -> None:
        # Connects the lens's post_save handler (recompute a stale lens after an edit).
        from annotate import lens  # noqa: F401
