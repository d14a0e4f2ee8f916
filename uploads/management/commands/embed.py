"""`python manage.py embed`: give every passage a vector of the embeddings model configured
now (uploads/embeddings.py). Run it after changing EMBEDDINGS_URL or EMBEDDINGS_MODEL: until
then, passages whose vectors another model made (or that have none: the server was down when
their file was read) are found by their words alone. Safe to run while the server serves, and
again: it does only what is missing."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.db.models.functions import Length

from uploads import embeddings
from uploads.models import Passage, PassageVector


class Command(BaseCommand):
    help = "Compute the passages' vectors that the embeddings model configured now has not made."

    def handle(self, *args: Any, **options: Any) -> None:
        model = embeddings.model_name()
        probe = embeddings.embed(["size"])
        if probe is None:
            raise CommandError("The embeddings model failed: see the log. Nothing was changed.")
        width = probe.shape[1] * embeddings.STORED(0).itemsize
        current = PassageVector.objects.annotate(width=Length("vector")).filter(
            model=model, width=width
        )
        missing = Passage.objects.exclude(Q(pk__in=current.values("passage_id")))
        files = missing.values_list("file_id", flat=True).distinct().order_by("file_id")
        done = 0
        for file_id in files:
            passages = list(missing.filter(file_id=file_id).only("file_id", "text"))
            if not embeddings.vectors_build(passages):
                raise CommandError(
                    f"The embeddings model failed after {done} passage(s): see the log. "
                    "Run the command again to go on."
                )
            done += len(passages)
        self.stdout.write(f"{done} passage(s) given vectors of {model}.")
