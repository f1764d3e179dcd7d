"""(skeleton)"""

from flask import Blueprint

bp = Blueprint("automation", __name__)
