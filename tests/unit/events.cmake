sonde_unit_test(test_events ubsan ${CMAKE_CURRENT_LIST_DIR}/test_events.c)
