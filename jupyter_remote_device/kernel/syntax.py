"""Is a cell complete? (the kernel answers ``is_complete_request`` itself, without the board)."""
import codeop
import re


def is_complete(code):
    """'complete' | 'incomplete' | 'invalid' (+ indent) like IPython, using codeop."""
    try:
        r = codeop.compile_command(code, "<input>", "exec")
    except (SyntaxError, OverflowError, ValueError):
        return {"status": "invalid"}
    if r is None:
        last = code.rstrip("\n").split("\n")[-1] if code.strip() else ""
        indent = re.match(r"\s*", last).group(0)
        if last.rstrip().endswith(":"):
            indent += "    "
        return {"status": "incomplete", "indent": indent}
    if code.rstrip("\n").split("\n")[-1].startswith((" ", "\t")) and not code.endswith("\n\n"):
        return {"status": "incomplete", "indent": ""}
    return {"status": "complete"}
