sonde_unit_test(test_probe_def asan ${CMAKE_CURRENT_LIST_DIR}/test_probe_def.c)
