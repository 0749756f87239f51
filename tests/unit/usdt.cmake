sonde_unit_test(test_usdt asan ${CMAKE_CURRENT_LIST_DIR}/test_usdt.c)
