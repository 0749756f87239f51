sonde_unit_test(test_sym asan ${CMAKE_CURRENT_LIST_DIR}/test_sym.c)
