"""The kinds of file KimiChat reads: apart from the model, so that a file can be read in a
process that loads no models (uploads/reader.py)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    PDF = "pdf", "PDF"
    DOCX = "docx", _("Word")
    XLSX = "xlsx", _("Excel")
    PPTX = "pptx", _("PowerPoint")
    TEXT = "text", _("Text")
    IMAGE = "image", _("Image")
