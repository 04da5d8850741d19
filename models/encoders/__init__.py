"""Audio encoders: AST (transformer) and DASS (state space). Both take normalised fbank."""
from models.encoders.ast import ASTEncoder
from models.encoders.dass import DASSEncoder

__all__ = ["ASTEncoder", "DASSEncoder"]
