"""Active content from a board made inert before it reaches a notebook.

A board is not trusted, but what a kernel sends is shown as trusted output: a board's
``application/javascript`` would run in the browser, so would ``<script>`` or an ``onload=``
in its ``text/html`` or ``image/svg+xml``. ``make_inert`` drops the script MIME types and
rewrites HTML/SVG without scripts, frames, plug-ins, event-handler attributes or
``javascript:`` URLs; it says what it removed, so the kernel can note it in the output.
"""
import html
from html.parser import HTMLParser

SCRIPT_TYPES = ("application/javascript", "text/javascript", "application/ecmascript", "application/x-javascript",
                "text/ecmascript")
MARKUP_TYPES = ("text/html", "image/svg+xml")
DROP_WITH_CONTENT = frozenset(("script", "iframe", "frame", "frameset", "object", "embed", "applet", "noscript"))
DROP_TAG = frozenset(("base", "meta", "link", "portal"))
URL_ATTRS = frozenset(("href", "src", "xlink:href", "action", "formaction", "data", "srcdoc", "background",
                       "poster", "lowsrc", "dynsrc"))


def _dangerous_url(value):
    v = "".join(ch for ch in html.unescape(value or "") if not ch.isspace() and ord(ch) >= 32).lower()
    return v.startswith(("javascript:", "vbscript:", "data:text/html", "data:application/", "data:image/svg"))


class _Inert(HTMLParser):
    def __init__(self):
        HTMLParser.__init__(self, convert_charrefs=False)
        self.out = []
        self.removed = set()
        self._skip = 0  # depth inside a dropped element

    def _attrs(self, attrs):
        kept = []
        for name, value in attrs:
            low = name.lower()
            if low.startswith("on"):
                self.removed.add("%s= attributes" % low)
                continue
            if low in URL_ATTRS and value is not None and (_dangerous_url(value) or low == "srcdoc"):
                self.removed.add("a %s URL" % low)
                continue
            if low == "style" and value and ("expression(" in value.lower() or "javascript:" in value.lower()):
                self.removed.add("a scripted style")
                continue
            kept.append(name if value is None else '%s="%s"' % (name, html.escape(value, quote=True)))
        return (" " + " ".join(kept)) if kept else ""

    def handle_starttag(self, tag, attrs, closed=False):
        low = tag.lower()
        if low in DROP_WITH_CONTENT:
            self.removed.add("<%s>" % low)
            if not closed:
                self._skip += 1
            return
        if self._skip:
            return
        if low in DROP_TAG:
            self.removed.add("<%s>" % low)
            return
        self.out.append("<%s%s%s>" % (tag, self._attrs(attrs), " /" if closed else ""))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs, closed=True)

    def handle_endtag(self, tag):
        low = tag.lower()
        if low in DROP_WITH_CONTENT:
            self._skip = max(0, self._skip - 1)
            return
        if not self._skip and low not in DROP_TAG:
            self.out.append("</%s>" % tag)

    def handle_data(self, data):
        if not self._skip:
            self.out.append(html.escape(data, quote=False) if self.cdata_elem is None else data)

    def handle_entityref(self, name):
        if not self._skip:
            self.out.append("&%s;" % name)

    def handle_charref(self, name):
        if not self._skip:
            self.out.append("&#%s;" % name)

    def handle_comment(self, data):
        pass  # conditional comments can hide markup: drop them all

    def handle_decl(self, decl):
        if not self._skip:
            self.out.append("<!%s>" % decl)

    def handle_pi(self, data):
        pass

    def unknown_decl(self, data):
        pass


def inert_markup(text):
    """(markup without active content, [what was removed])."""
    p = _Inert()
    try:
        p.feed(text)
        p.close()
    except Exception:
        return html.escape(text), ["markup that could not be read"]
    return "".join(p.out), sorted(p.removed)


def make_inert(data):
    """(a MIME bundle without active content, [notes]); ``data`` itself is not changed."""
    if not isinstance(data, dict):
        return data, []
    out, notes = {}, []
    for mime, value in data.items():
        if mime in SCRIPT_TYPES or "javascript" in mime or "ecmascript" in mime:
            notes.append("dropped %s" % mime)
            continue
        if mime in MARKUP_TYPES and isinstance(value, str):
            value, removed = inert_markup(value)
            if removed:
                notes.append("removed %s from %s" % (", ".join(removed), mime))
        out[mime] = value
    if notes and "text/plain" not in out:
        out["text/plain"] = "<output from the board with its active content removed>"
    return out, notes
