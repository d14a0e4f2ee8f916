from django.urls import path

from uploads import views

urlpatterns = [
    path("files/", views.files, name="files"),
    path("files/upload/", views.file_upload, name="file-upload"),
    path("files/suggest/", views.file_suggest, name="file-suggest"),
    path("files/<int:file_id>/download/", views.file_download, name="file-download"),
    path("files/<int:file_id>/view/", views.file_view, name="file-view"),
    path("files/<int:file_id>/delete/", views.file_delete, name="file-delete"),
    path("files/<int:file_id>/read-with-kimi/", views.file_read_with_kimi, name="file-ocr"),
]
