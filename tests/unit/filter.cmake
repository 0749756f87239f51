sonde_unit_test(test_filter asan ${CMAKE_CURRENT_LIST_DIR}/test_filter.c)
