from django.http import HttpRequest

from kimichat import kimi


def kimi_status(request: HttpRequest) -> dict:
    return {"kimi_configured": kimi.is_configured()}
