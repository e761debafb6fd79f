"""The browser bundle: a static site that runs the whole stylization in the visitor's browser on onnxruntime-web
(``nst-rt web-bundle``, docs/browser.md). ``static/`` holds the page and its JavaScript; ``bundle`` writes a site
from them, an export and the onnxruntime-web package (``onnxruntime_web``)."""
