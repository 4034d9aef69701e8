# -*- Python -*-
import os
import lit.formats

config.name = "DS-Unit"
config.suffixes = []
config.test_source_root = os.path.join(config.ds_obj_root, "unittests")
config.test_exec_root = config.test_source_root
# Every executable named *Tests under build/unittests is a gtest binary.
config.test_format = lit.formats.GoogleTest(".", "Tests")
