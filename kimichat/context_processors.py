from django.conf import settings

import kimi


def kimi_status(request) -> dict:
    return {
        "kimi_configured": kimi.is_configured(),
        "upload_max_bytes": settings.UPLOAD_MAX_BYTES,
        "web_search_offered": settings.KIMI_WEB_SEARCH,
        "api_keys_on": settings.API_KEYS,
    }
