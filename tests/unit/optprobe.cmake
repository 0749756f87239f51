sonde_unit_test(test_optprobe ubsan ${CMAKE_CURRENT_LIST_DIR}/test_optprobe.c)
