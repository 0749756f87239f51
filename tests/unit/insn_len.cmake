sonde_unit_test(test_insn_len asan ${CMAKE_CURRENT_LIST_DIR}/test_insn_len.c)
