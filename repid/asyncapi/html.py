"""The AsyncAPI docs page: one HTML file that renders a document with the AsyncAPI React component.

Where the component comes from (see `repid.asyncapi.assets`):

* When the pinned bundle has been fetched into `repid/asyncapi/static/` (by
  `scripts/fetch_asyncapi_assets.py`), the page loads it first from `assets_url` - relative
  `static/` by default, which the embedded docs server serves from the package - so the page
  works with no internet access.
* After that, or when the files are missing, it tries the same pinned version on jsDelivr and
  then unpkg. A page served by your own web server without a `static/` route therefore still
  works when the browser can reach a CDN.

The document is embedded in the page as JSON (with `<`, `>` and `&` escaped so it cannot end
the script element early).
"""

from __future__ import annotations

import html
import json
from typing import Any

from repid.asyncapi import assets

__all__ = ["render_html"]

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
</head>
<body>
<div id="asyncapi"><noscript>This page needs JavaScript to render the AsyncAPI document.
The raw document is at asyncapi.json.</noscript></div>
<script id="asyncapi-document" type="application/json">{document}</script>
<script id="asyncapi-config" type="application/json">{config}</script>
<script>
(function () {{
  "use strict";
  var scripts = {scripts};
  var styles = {styles};
  function read(id) {{ return JSON.parse(document.getElementById(id).textContent); }}
  function fail(message) {{
    var box = document.getElementById("asyncapi");
    box.textContent = message;
  }}
  function loadStyle(index) {{
    if (index >= styles.length) {{ return; }}
    var link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = styles[index];
    link.onerror = function () {{ link.remove(); loadStyle(index + 1); }};
    document.head.appendChild(link);
  }}
  function loadScript(index) {{
    if (index >= scripts.length) {{
      fail("Could not load the AsyncAPI React component (tried " + scripts.join(", ") + ").");
      return;
    }}
    var script = document.createElement("script");
    script.src = scripts[index];
    script.onload = function () {{
      if (typeof AsyncApiStandalone === "undefined") {{
        script.remove();
        loadScript(index + 1);
        return;
      }}
      AsyncApiStandalone.render(
        {{ schema: read("asyncapi-document"), config: read("asyncapi-config") }},
        document.getElementById("asyncapi")
      );
    }};
    script.onerror = function () {{ script.remove(); loadScript(index + 1); }};
    document.body.appendChild(script);
  }}
  loadStyle(0);
  loadScript(0);
}})();
</script>
</body>
</html>
"""


def _script_json(value: Any) -> str:
    """JSON that is safe inside a <script> element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def asset_urls(assets_url: str | None) -> tuple[list[str], list[str]]:
    """(script URLs, stylesheet URLs) to try in order: local first if fetched, then CDNs."""
    scripts: list[str] = []
    styles: list[str] = []
    if assets_url is not None and assets.local_assets_available():
        scripts.append(f"{assets_url}asyncapi-react.js")
        styles.append(f"{assets_url}asyncapi-react.css")
    scripts.extend(assets.CDN_FALLBACK_URLS["asyncapi-react.js"])
    styles.extend(assets.CDN_FALLBACK_URLS["asyncapi-react.css"])
    return scripts, styles


def render_html(
    schema: dict[str, Any],
    *,
    sidebar: bool = True,
    info: bool = True,
    servers: bool = True,
    operations: bool = True,
    messages: bool = True,
    schemas: bool = True,
    errors: bool = True,
    expand_message_examples: bool = True,
    assets_url: str | None = "static/",
) -> str:
    """A complete HTML page rendering the AsyncAPI `schema` (a document dict).

    The flags choose the sections the component shows; `expand_message_examples` opens the
    message examples. `assets_url` is where the locally served component files are (a URL
    prefix ending in `/`); None uses only the CDNs. See the module docstring.
    """
    config = {
        "show": {
            "sidebar": sidebar,
            "info": info,
            "servers": servers,
            "operations": operations,
            "messages": messages,
            "messageExamples": expand_message_examples,
            "schemas": schemas,
            "errors": errors,
        },
        "expand": {"messageExamples": expand_message_examples},
        "sidebar": {"showServers": "byDefault", "showOperations": "byDefault"},
    }
    scripts, styles = asset_urls(assets_url)
    title = schema.get("info", {}).get("title") or "AsyncAPI"
    return _PAGE.format(
        title=html.escape(str(title)),
        document=_script_json(schema),
        config=_script_json(config),
        scripts=_script_json(scripts),
        styles=_script_json(styles),
    )
