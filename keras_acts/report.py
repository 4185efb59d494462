"""The one table writer and the one machine description used by the main job,
the parameter table and the benchmarks.

Example:
    >>> print(markdown_table(["activation", "ratio"], [["relu", "1.00x"]]))
    | activation | ratio |
    |---|---|
    | relu | 1.00x |
"""

import os
import platform


def markdown_table(header, rows, align=None):
    """A markdown table from a header (list of str) and rows (lists of cells).

    ``align`` is an optional string of ``l``/``r`` per column (right-aligned
    columns get ``---:``). Cells are converted with ``str``.

    Example:
        >>> print(markdown_table(["a", "b"], [[1, 2]], align="lr").splitlines()[1])
        |---|---:|
    """
    align = align or "l" * len(header)
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    lines = ["| " + " | ".join(str(h) for h in header) + " |", rule]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """What a measurement ran on: CPU model and count, platform, Python, and the
    versions of Keras and of the backend packages that are imported.

    Example:
        >>> sorted(machine())[:3]
        ['backend', 'cpu', 'cpus']
    """
    import sys

    info = {"cpu": _cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}
    try:
        import keras

        info["keras"] = keras.__version__
        info["backend"] = keras.backend.backend()
    except ImportError:
        info["backend"] = None
    for module in ("tensorflow", "jax", "torch"):
        if module in sys.modules:
            info[module] = getattr(sys.modules[module], "__version__", "?")
    return info


def describe_machine(info=None):
    """One line naming the machine, e.g. for a table caption.

    Example:
        >>> describe_machine({"cpu": "Xeon", "cpus": 2, "backend": "jax", "keras": "3.15"})
        '2-CPU Xeon, Keras 3.15 on jax'
    """
    info = info or machine()
    return f"{info['cpus']}-CPU {info['cpu']}, Keras {info.get('keras', '?')} on " \
           f"{info.get('backend')}"
