"""Test-side tools for ds: safetensors I/O, random checkpoints, a numpy
reference of the DeepSeek V2/V3 math (../shared/SEMANTICS.md)."""
