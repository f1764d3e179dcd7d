"""(skeleton)"""

from flask import Blueprint

bp = Blueprint("sites", __name__)
