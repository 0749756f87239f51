sonde_unit_test(test_kprobe ubsan ${CMAKE_CURRENT_LIST_DIR}/test_kprobe.c)
