sonde_unit_test(test_vecuse ubsan ${CMAKE_CURRENT_LIST_DIR}/test_vecuse.c)
