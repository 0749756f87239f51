sonde_unit_test(test_vecstate ubsan ${CMAKE_CURRENT_LIST_DIR}/test_vecstate.c)
