"""Release student notebooks and grade submissions with nbval (see ``docs/instructors.md``).

``release(notebooks, out)`` writes ``out/student/`` (solutions replaced by a stub) and
``out/solution/`` (executed) for every lab; ``grade(assignment, submissions, out)`` grades a folder of
submissions into ``out/gradebook.csv`` and ``out/feedback/``.
"""

from .grade import GradeOptions, grade
from .notebook import graded_notebook, load_assignment, student_notebook
from .release import release

__all__ = ["GradeOptions", "grade", "release", "load_assignment", "graded_notebook", "student_notebook"]
